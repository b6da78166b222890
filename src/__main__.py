"""`python -m gpt_image_2_mcp`: the same as the gpt-image-2-mcp console script."""

import sys

from gpt_image_2_mcp.entrypoints.launch import main

sys.exit(main())
