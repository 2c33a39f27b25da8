"""The explorer in the browser (the only package that imports Gradio): its panels over a loaded
model (explorer.py) and the page that serves them (page.py)."""
