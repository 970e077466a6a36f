"""Runnable examples of extending the agent: a tool-using assistant and a RAG assistant."""
