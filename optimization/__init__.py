"""Planning: a PuLP MILP over the site's assets, its baselines, and diagnosis when it
cannot be solved. Imports only `grid/`."""
