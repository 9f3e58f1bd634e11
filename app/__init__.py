"""The composition root: wires the store, the field side, the guardrails, the MCP
server and the daemons into one running site for `serve`, `mcp stdio` and `demo`.
The only package that knows them all."""
