// The Live tabs' answer (ui/live_push.py), two looks chosen by the page: "text" (Classify:
// the label and the line under it) and "needle" (Music: a tuner's needle, -50..+50 cents,
// over the note and "Hz · cents", and under them the chroma (C..B) and loudness meter).
"use strict";

(() => {
  const label = document.querySelector(".live-answer-label");
  const value = document.querySelector(".live-answer-value");
  const detail = document.querySelector(".live-answer-detail");
  const clock = document.querySelector(".live-answer-clock");
  const dial = document.querySelector(".live-answer-needle");
  const needle = dial.querySelector(".needle");
  const setText = Push.setText;
  let look = "text";
  let colours = {}; // the dial's and meter's settings, from the page (core.viz.live)

  // The dial: -50..+50 cents spread over -60..+60 degrees around (100, 104).
  const RADIUS = 86;
  const degrees = (cents) => (Math.max(-50, Math.min(50, cents)) * 60) / 50;
  const point = (cents, radius) => {
    const a = (degrees(cents) * Math.PI) / 180;
    return [100 + radius * Math.sin(a), 104 - radius * Math.cos(a)];
  };
  const arc = (from, to) => {
    const [x0, y0] = point(from, RADIUS);
    const [x1, y1] = point(to, RADIUS);
    return `M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${RADIUS} ${RADIUS} 0 0 1 ` +
      `${x1.toFixed(2)} ${y1.toFixed(2)}`;
  };
  function drawDial(settings) {
    colours = { ...colours, ...settings };
    const inTune = settings.inTuneCents || 5;
    dial.querySelector(".scale").setAttribute("d", arc(-50, 50));
    const band = dial.querySelector(".band");
    band.setAttribute("d", arc(-inTune, inTune));
    band.setAttribute("stroke", colours.band);
    const ticks = dial.querySelector(".ticks");
    ticks.replaceChildren();
    for (const cents of [-50, -25, 0, 25, 50]) {
      const [x0, y0] = point(cents, RADIUS - 8);
      const [x1, y1] = point(cents, RADIUS + 6);
      const tick = document.createElementNS("http://www.w3.org/2000/svg", "line");
      Object.entries({ x1: x0, y1: y0, x2: x1, y2: y1 }).forEach(([k, v]) =>
        tick.setAttribute(k, v.toFixed(2)));
      ticks.appendChild(tick);
    }
  }
  function moveNeedle(data) {
    const pitched = typeof data.cents === "number";
    dial.classList.toggle("no-note", !pitched);
    dial.dataset.cents = pitched ? data.cents.toFixed(1) : "";
    needle.style.transform = `rotate(${pitched ? degrees(data.cents) : 0}deg)`;
    needle.setAttribute("stroke", pitched && data.inTune ? colours.inTune : colours.offTune);
  }

  // The meter: twelve chroma bars (0..1) and a loudness bar (floorDbfs..0 dBFS).
  const meter = document.querySelector(".live-answer-meter");
  const SVG = "http://www.w3.org/2000/svg";
  const BAR_TOP = 4;
  const BAR_HEIGHT = 48;
  let bars = [];
  function drawMeter(settings) {
    const names = [...(settings.names || []), "dB"];
    const slot = 200 / names.length;
    meter.replaceChildren();
    bars = names.map((name, i) => {
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("x", (i * slot + 2).toFixed(2));
      bar.setAttribute("width", (slot - 4).toFixed(2));
      bar.setAttribute("y", BAR_TOP + BAR_HEIGHT);
      bar.setAttribute("height", 0);
      const last = i === names.length - 1;
      bar.setAttribute("fill", last ? settings.loudness : settings.chroma);
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", (i * slot + slot / 2).toFixed(2));
      label.setAttribute("y", 62);
      label.setAttribute("text-anchor", "middle");
      label.textContent = name;
      meter.append(bar, label);
      return bar;
    });
  }
  function setBar(bar, share) {
    const height = BAR_HEIGHT * Math.max(0, Math.min(1, share));
    bar.setAttribute("y", (BAR_TOP + BAR_HEIGHT - height).toFixed(2));
    bar.setAttribute("height", height.toFixed(2));
  }
  function moveMeter(data) {
    if (!bars.length) return;
    const chroma = Array.isArray(data.chroma) ? data.chroma : [];
    chroma.slice(0, bars.length - 1).forEach((value, i) => setBar(bars[i], value));
    const floor = colours.floorDbfs || -60;
    const level = typeof data.levelDbfs === "number" ? data.levelDbfs : floor;
    setBar(bars[bars.length - 1], (Math.max(floor, level) - floor) / -floor);
    const strongest = chroma.length ? chroma.indexOf(Math.max(...chroma)) : -1;
    meter.dataset.strongest =
      strongest >= 0 && chroma[strongest] > 0 ? colours.names[strongest] : "";
  }

  function show(data) {
    if (data.ended) return;
    setText(value, data.headline);
    setText(detail, data.detail);
    if (look === "needle") {
      moveNeedle(data);
      moveMeter(data);
    }
    if (data.clock) {
      Object.assign(clock.dataset, {
        answers: String(data.clock.answers),
        headline: data.clock.headline,
        heardAt: data.clock.heardAt.toFixed(4),
        readyAt: data.clock.readyAt.toFixed(4),
        drawnAt: data.sentAt.toFixed(4),
        headlineHeardAt: data.clock.headlineHeardAt.toFixed(4),
        // Where the wait went (live_push.next_answer) and when the reply was read here.
        arrivedAt: data.poll ? data.poll.arrivedAt.toFixed(4) : "",
        notifiedAt: data.poll && data.poll.notifiedAt ? data.poll.notifiedAt.toFixed(4) : "",
        wokeAt: data.poll ? data.poll.wokeAt.toFixed(4) : "",
        receivedAt: data.receivedAt.toFixed(4),
        responseStartAt: data.network ? data.network.responseStartAt.toFixed(4) : "",
        responseEndAt: data.network ? data.network.responseEndAt.toFixed(4) : "",
      });
    }
  }

  const answer = {
    render(args) {
      setText(label, args.label);
      if (args.look !== look) {
        look = args.look;
        dial.classList.toggle("off", look !== "needle");
        meter.classList.toggle("off", look !== "needle");
        if (look === "needle") {
          drawDial(args.dial || {});
          drawMeter(args.dial || {});
        }
      }
      Push.fitHeight(args.height);
    },
    start: (args) => show(args.shown),
    show,
    finished: (data) => data.ended,
    after: (data) => data.answers,
  };
  Push.looks.text = answer;
  Push.looks.needle = answer;
})();
