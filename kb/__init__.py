"""The store's knowledge base: ingestion, indexes and search."""
