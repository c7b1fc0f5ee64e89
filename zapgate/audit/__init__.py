"""The audit log: who changed what, when, from where, with what result; refused attempts too."""
