"""Dashboard-side helpers shared by the page scripts (Streamlit code lives here, never in core/).

Importing this package also guards the app frame. Streamlit treats a folder named `pages/`
beside the entry script as an old-style multipage app until the first `st.navigation` call
of the server process. If that first request is a direct link to a page (`/music`), the page
script would run alone, without dashboard.py's sidebar and session state. Every page imports
from `ui`, so here we switch the old behaviour off and rerun: the rerun goes through
dashboard.py, whose `st.navigation` then routes to the requested page.
"""

from ui._frame import route_through_entry_script

route_through_entry_script()
