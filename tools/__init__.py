"""The tool functions: typed pydantic input -> output, no MCP imports.

The MCP server, the CLI and the tests call these same functions with a `Runtime`
and the calling principal (`Caller`).
"""
