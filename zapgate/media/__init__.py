"""Media files: where they are stored (local disk or S3), private by default."""
