"""The 3scale-compatible API plumbing shared by /api and /admin/api."""
