"""The demo company: two tenants, their books, members and constitutions."""
