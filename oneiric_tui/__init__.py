"""Oneiric Console: the Textual face of the engine. It renders what the engine says and
calls the engine to act; it holds no business logic of its own."""
