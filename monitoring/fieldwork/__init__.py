"""Fieldwork: campaigns (create and edit), frames, the draw, invitations, residents' entry,
progress and the response window, with their tables, pages and API description."""
