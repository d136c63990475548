// The sidebar's live status (ui/status_push.py), look "status": three lines of text (memory,
// the class's trainings, the workers), asked for every `every_ms` milliseconds; only the text
// changes, nothing reruns Streamlit.
"use strict";

(() => {
  const box = document.querySelector(".status-lines");
  let every = 5000;

  Push.looks.status = {
    get minInterval() {
      return every;
    },
    render(args) {
      every = args.every_ms || every;
      Push.fitHeight(document.body.scrollHeight);
    },
    start() {},
    show(data) {
      if (data.unknown) {
        Push.report({ unknown: true });
        return;
      }
      Push.setText(box, (data.lines || []).join("\n"));
      Push.fitHeight(document.body.scrollHeight);
    },
    finished: (data) => Boolean(data.unknown),
    after: (data) => data.version || 0,
  };
})();
