"""gpt-image-2-mcp: an MCP server for OpenAI gpt-image-2."""

__version__ = "0.1.0"
