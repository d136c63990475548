"""Plot builders: pure functions from data to plotly Figures, one module per area."""
