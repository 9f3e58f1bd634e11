"""The web dashboard: one page with Plotly charts and the JSON endpoint it polls,
mounted beside /mcp on the same HTTP app. Read-only: it calls the read tools only."""
