"""migrate-tui's Textual wizard. It consumes engine events and never builds SQL."""
