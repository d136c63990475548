// The Train page's live progress (ui/train_push.py), look "training": the queued line, the
// caption of what the worker trains, the progress bar with its text, and the loss and
// accuracy curves as core.viz.training.training_curves_figure draws them (train running
// mean, train per epoch, validation; axes, legend). Drawn incrementally: a reply changes a
// text only when it differs, the bar's width, and appends its new points to the curves.
// The curves are polylines in data coordinates inside a group whose transform maps them to
// the panel (strokes keep their width: non-scaling-stroke), so when an axis grows only that
// transform and the ticks change, never the points.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const root = document.querySelector(".train-progress");
  const [queued, caption, text, fill, chart, legend] = [
    "queued", "caption", "progress-text", "bar-fill", "curves", "legend",
  ].map((name) => root.querySelector(`.train-${name}`));
  const MARGIN = { left: 46, right: 10, top: 22, bottom: 38, gap: 28 };
  const PANELS = ["loss", "accuracy"];
  const make = (name, attributes, parent) => {
    const element = document.createElementNS(SVG, name);
    Object.entries(attributes).forEach(([k, v]) => element.setAttribute(k, v));
    if (parent) parent.appendChild(element);
    return element;
  };

  let traces = []; // per trace: {style, line, dots, dotPath, panel}
  let panels = {}; // per panel: {axes, data, yMax, fixed}
  let have = 0; // curve records drawn so far
  let drawn = 0; // points drawn so far (all traces)
  let xMax = 1;
  let totalSteps = 0;
  let progress = -1;

  const niceStep = (span) => {
    const raw = span / 5;
    const power = 10 ** Math.floor(Math.log10(raw));
    return power * ([1, 2, 5].find((m) => m * power >= raw) || 10);
  };
  const niceCeil = (value) => {
    const step = niceStep(value);
    return Math.ceil(value / step) * step;
  };

  function build(styles, height) {
    chart.replaceChildren();
    chart.setAttribute("height", height);
    legend.replaceChildren();
    panels = {};
    for (const name of PANELS) {
      const accuracy = name === "accuracy";
      panels[name] = {
        axes: make("g", { class: `axes ${name}` }, chart),
        data: make("g", { class: `data ${name}` }, chart),
        yMax: accuracy ? 1.02 : 1,
        fixed: accuracy,
        percent: accuracy,
      };
    }
    traces = styles.map((style) => {
      const data = panels[style.panel].data;
      const common = { stroke: style.colour, "vector-effect": "non-scaling-stroke", fill: "none" };
      const line = make("polyline", { ...common, "stroke-width": style.width }, data);
      line.setAttribute("stroke-opacity", style.opacity);
      const dots = style.markers
        ? make("path", { ...common, "stroke-width": 6, "stroke-linecap": "round", d: "" }, data)
        : null;
      if (style.legend) {
        const entry = document.createElement("span");
        const swatch = document.createElement("i");
        swatch.style.background = style.colour;
        swatch.style.opacity = style.opacity;
        entry.append(swatch, style.name);
        legend.appendChild(entry);
      }
      return { style, line, dots, dotPath: "", panel: panels[style.panel] };
    });
    layout();
  }

  // Where each panel sits in the chart's current width; its ticks, and the transform that
  // takes its data coordinates (step, value) to pixels.
  function layout() {
    const width = chart.clientWidth || 600;
    const height = Number(chart.getAttribute("height"));
    const panelWidth = (width - MARGIN.gap) / 2;
    const w = panelWidth - MARGIN.left - MARGIN.right;
    const h = height - MARGIN.top - MARGIN.bottom;
    PANELS.forEach((name, i) => {
      const panel = panels[name];
      const left = i * (panelWidth + MARGIN.gap) + MARGIN.left;
      const sx = w / xMax;
      const sy = h / panel.yMax;
      const bottom = MARGIN.top + h;
      panel.data.setAttribute("transform", `matrix(${sx} 0 0 ${-sy} ${left} ${bottom})`);
      drawAxes(panel, name, left, w, h);
    });
  }

  function drawAxes(panel, name, left, w, h) {
    const axes = panel.axes;
    const bottom = MARGIN.top + h;
    axes.replaceChildren();
    const grid = { stroke: "currentColor", "stroke-opacity": 0.12 };
    const label = (x, y, anchor, content) => {
      make("text", { x, y, "text-anchor": anchor }, axes).textContent = content;
    };
    const yStep = panel.percent ? 0.2 : niceStep(panel.yMax);
    for (let y = 0; y <= panel.yMax + 1e-9; y += yStep) {
      const py = bottom - (y / panel.yMax) * h;
      make("line", { x1: left, x2: left + w, y1: py, y2: py, ...grid }, axes);
      const shown = panel.percent ? `${Math.round(y * 100)}%` : +y.toFixed(3);
      label(left - 6, py + 4, "end", String(shown));
    }
    const xStep = Math.max(1, niceStep(xMax));
    for (let x = 0; x <= xMax + 1e-9; x += xStep) {
      const px = left + (x / xMax) * w;
      make("line", { x1: px, x2: px, y1: MARGIN.top, y2: bottom, ...grid }, axes);
      label(px, bottom + 14, "middle", String(Math.round(x)));
    }
    make("rect", { x: left, y: MARGIN.top, width: w, height: h, ...grid, fill: "none" }, axes);
    label(left + w / 2, MARGIN.top - 8, "middle", name);
    label(left + w / 2, bottom + 32, "middle", "step");
  }

  function clear() {
    traces.forEach((trace) => {
      trace.line.points.clear();
      trace.dotPath = "";
      if (trace.dots) trace.dots.setAttribute("d", "");
    });
    have = 0;
    drawn = 0;
  }

  // Append each trace's new points; true when an axis had to grow to hold them.
  function append(series) {
    let grew = false;
    series.forEach(([xs, ys], i) => {
      const trace = traces[i];
      if (!trace || !xs.length) return;
      xs.forEach((x, k) => {
        const point = chart.createSVGPoint();
        point.x = x;
        point.y = ys[k];
        trace.line.points.appendItem(point);
        trace.dotPath += `M${x} ${ys[k]}h0`;
        if (x > xMax) {
          xMax = x;
          grew = true;
        }
        if (!trace.panel.fixed && ys[k] > trace.panel.yMax) {
          trace.panel.yMax = niceCeil(ys[k] * 1.05);
          grew = true;
        }
      });
      if (trace.dots) trace.dots.setAttribute("d", trace.dotPath);
      drawn += xs.length;
    });
    chart.dataset.points = String(drawn);
    return grew;
  }

  function show(data) {
    if (data.unknown) return;
    const line = (element, content) => {
      Push.setText(element, content || "");
      element.hidden = !content;
    };
    line(queued, data.queued);
    line(caption, data.caption);
    Push.setText(text, data.text || "");
    if (data.progress !== progress) {
      progress = data.progress;
      fill.style.width = `${(100 * (progress || 0)).toFixed(1)}%`;
    }
    root.dataset.state = data.state || "";
    root.dataset.version = String(data.version);
    let grew = false;
    if (data.totalSteps && data.totalSteps !== totalSteps) {
      totalSteps = data.totalSteps;
      xMax = Math.max(xMax, totalSteps);
      grew = true;
    }
    const points = data.points;
    if (points) {
      if (points.from !== have) clear(); // the server starts again from its first record
      grew = append(points.series) || grew;
      have = points.to;
    }
    if (grew) layout();
    Push.fitHeight(root.scrollHeight);
  }

  let built = false;
  new ResizeObserver(() => built && layout()).observe(chart);

  Push.looks.training = {
    render(args) {
      if (!built) {
        built = true;
        build(args.traces || [], args.height || 300);
        Push.fitHeight(root.scrollHeight);
      }
    },
    start() {
      clear();
      xMax = 1;
      totalSteps = 0;
      traces.forEach((trace) => {
        if (!trace.panel.fixed) trace.panel.yMax = 1;
      });
      layout();
    },
    show,
    // One redraw a second at most: the server has news every READ_SECONDS (0.5 s) while
    // the job steps, and each redraw repaints the frame (measured: docs/ARCHITECTURE.md).
    minInterval: 1000,
    query: () => `&points=${have}`,
    after: (data) => data.version,
    finished: (data) => Boolean(data.done || data.unknown),
    end: (data) => Push.report(data.unknown ? { unknown: true } : { ended: true }),
  };
})();
