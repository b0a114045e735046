"""Staff pages outside the admin (the finance dashboard): selectors, views and urls."""
