"""The MCP face of gridpilot: tools, resources and prompts over stdio and HTTP."""
