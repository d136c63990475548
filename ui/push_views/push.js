// The pushed views' shared part (ui/push_route.py, ui/live_push.py, ui/train_push.py): the
// Streamlit component protocol and the long poll. A look (answer.js, training.js) registers
// itself in Push.looks and draws only its own elements; nothing here reruns Streamlit.
// Protocol, by postMessage to the parent page: componentReady -> render (args, theme) ->
// setFrameHeight / setComponentValue.
"use strict";

const Push = (() => {
  const send = (type, extra) =>
    window.parent.postMessage({ isStreamlitMessage: true, apiVersion: 1, type, ...extra }, "*");
  const setText = (element, text) => {
    if (element.textContent !== text) element.textContent = text;
  };
  const looks = {};
  let token = null;
  let generation = 0; // a new token (a new stream or job) ends the previous poll loop
  let reported = false;
  let height = null;

  // One value per token: the page reruns when it gets it (a view that failed, a job ended).
  function report(value) {
    if (reported) return;
    reported = true;
    send("streamlit:setComponentValue", { value: { ...value, token }, dataType: "json" });
  }

  function fitHeight(pixels) {
    const rounded = Math.ceil(pixels);
    if (rounded === height) return;
    height = rounded;
    send("streamlit:setFrameHeight", { height: rounded });
  }

  // When the reply's first and last bytes reached the browser (Resource Timing, seconds
  // since the epoch; the live benchmark tells the network from this page's main thread
  // with them). The entries are cleared so the buffer never fills.
  function networkTiming(url) {
    const entry = performance.getEntriesByName(url).pop();
    performance.clearResourceTimings();
    if (!entry || !entry.responseEnd) return null;
    const at = (ms) => (performance.timeOrigin + ms) / 1000;
    return { responseStartAt: at(entry.responseStart), responseEndAt: at(entry.responseEnd) };
  }

  // Ask `route` for what is newer than the look's last number until the look says it is
  // finished; after three failed polls in a row tell the page, which redraws the view
  // itself.
  async function poll(route, look, mine) {
    let after = -1;
    let failures = 0;
    // Relative to this page (<base>/component/<name>/index.html): the route sits under
    // the same base URL, whatever prefix a proxy serves the app under.
    const base = new URL("../../" + route, window.location.href);
    let asked = 0;
    while (mine === generation) {
      try {
        // A look that needs no more than one reply per `minInterval` ms waits here (the
        // browser pays for every redraw of the frame, the server for every poll).
        const wait = (look.minInterval || 0) - (performance.now() - asked);
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        asked = performance.now();
        const extra = look.query ? look.query() : "";
        const url = `${base}?token=${encodeURIComponent(token)}&after=${after}${extra}`;
        const reply = await fetch(url, { cache: "no-store" });
        if (!reply.ok) throw new Error(`the server answered ${reply.status}`);
        const data = await reply.json(); // an HTML page (no such route) throws here
        data.receivedAt = (performance.timeOrigin + performance.now()) / 1000;
        data.network = networkTiming(url);
        if (mine !== generation) return;
        failures = 0;
        look.show(data);
        if (look.finished(data)) {
          if (look.end) look.end(data);
          return;
        }
        after = Math.max(after, look.after(data));
      } catch (error) {
        failures += 1;
        if (failures >= 3) {
          report({ failed: String(error) });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
  }

  window.addEventListener("message", (event) => {
    if (!event.data || event.data.type !== "streamlit:render") return;
    const args = event.data.args;
    const theme = event.data.theme;
    const look = looks[args.look];
    if (!look) return;
    if (theme) {
      document.body.style.color = theme.textColor;
      if (theme.font) document.body.style.fontFamily = theme.font;
      if (theme.primaryColor) document.body.style.setProperty("--primary", theme.primaryColor);
    }
    document.body.dataset.look = args.look;
    look.render(args);
    if (args.token !== token) {
      token = args.token;
      reported = false;
      look.start(args);
      generation += 1;
      poll(args.route, look, generation);
    }
  });

  return { send, setText, looks, report, fitHeight, ready: () => send("streamlit:componentReady") };
})();
