"""Steps that add columns: language ID, token counts."""
