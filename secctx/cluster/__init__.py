"""Cluster lifecycle: the Docker engine, kind clusters, existing clusters."""
