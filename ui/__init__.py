"""Dashboard-side helpers shared by the page scripts (Streamlit code lives here, never in core/)."""
