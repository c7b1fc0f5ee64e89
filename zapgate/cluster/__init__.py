"""The nodes of a cluster: who is alive, and (to come) who runs which session."""
