"""Serving the graph with the LangGraph server: per-user auth and the dev-server launcher."""
