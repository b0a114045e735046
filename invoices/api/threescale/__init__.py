"""The 3scale-compatible Billing API (/api): representations, XML, views."""
