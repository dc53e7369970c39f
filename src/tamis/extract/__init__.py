"""HTML to text: the extraction engines and the sandbox that bounds their time per page."""
