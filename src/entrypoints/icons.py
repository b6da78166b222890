"""The server's and the tools' icons: small hand-written SVGs, embedded as data: URIs.

Embedded rather than linked so a client shows them offline and never fetches anything on the server's behalf.
Each is a white glyph on one rounded indigo square, legible on light and dark themes alike, with no script or
external reference (clients are told to distrust SVGs that have them).
"""

from __future__ import annotations

import base64

from mcp.types import Icon

SVG_MIME_TYPE = "image/svg+xml"

_FRAME = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><rect width="24" height="24" rx="5" fill="#4338CA"/>'
    '<g fill="none" stroke="#fff" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">{glyph}</g></svg>'
)

_GLYPHS = {
    # A framed picture: a sun over two hills.
    "server": '<rect x="5" y="6" width="14" height="12" rx="1.5"/><circle cx="9.5" cy="10" r="1.3"/>'
              '<path d="M5.5 16.5l4.5-4 3 2.5 2.5-2 3 3"/>',
    # A sparkle and a plus: something new.
    "generate_image": '<path d="M11 4.5l1.6 4.4 4.4 1.6-4.4 1.6L11 16.5l-1.6-4.4L5 10.5l4.4-1.6z"/>'
                      '<path d="M18 15v4.5M15.75 17.25h4.5"/>',
    # A pencil over a line: change what is there.
    "edit_image": '<path d="M14.5 5.5l3.5 3.5-8.5 8.5H6v-3.5z"/><path d="M12.5 7.5l3.5 3.5M6 20h12"/>',
    # Stacked layers: the first turn of many.
    "start_edit_session": '<path d="M12 5l7 3.5-7 3.5-7-3.5z"/><path d="M5 12l7 3.5 7-3.5"/>'
                          '<path d="M5 15.5l7 3.5 7-3.5"/>',
    # Two arrows in a loop: another turn.
    "continue_edit_session": '<path d="M6 12a6 6 0 0 1 10.2-4.3L18 9.5"/><path d="M18 5.5v4h-4"/>'
                             '<path d="M18 12a6 6 0 0 1-10.2 4.3L6 14.5"/><path d="M6 18.5v-4h4"/>',
    # A tick in a circle: done.
    "end_edit_session": '<circle cx="12" cy="12" r="7"/><path d="M8.8 12.2l2.2 2.2 4.3-4.6"/>',
    # A clock face: come back for it.
    "get_image_job": '<circle cx="12" cy="12" r="7"/><path d="M12 8.5V12l2.5 2"/>',
    # A bulleted list.
    "list_edit_sessions": '<path d="M10 7.5h9M10 12h9M10 16.5h9"/><path d="M5.5 7.5h.5M5.5 12h.5M5.5 16.5h.5"/>',
}


def svg_document(name: str) -> str:
    """The SVG text of one icon ('server' or a tool's name)."""
    return _FRAME.format(glyph=_GLYPHS[name])


def svg_icon(svg: str) -> Icon:
    """An SVG as an MCP icon, embedded in a base64 data: URI."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return Icon(src=f"data:{SVG_MIME_TYPE};base64,{data}", mime_type=SVG_MIME_TYPE, sizes=["any"])


def server_icons() -> list[Icon]:
    """The icon a client shows for the server itself."""
    return [svg_icon(svg_document("server"))]


def tool_icons(tool: str) -> list[Icon]:
    """The icon of one tool (or of a prompt that leads to it); the server's own for a name without one."""
    return [svg_icon(svg_document(tool if tool in _GLYPHS else "server"))]
