"""The chatbot graph for `langgraph dev`, compiled without a checkpointer (the server has one)."""

from agent.graph import builder

graph = builder().compile()
