"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function dur(s) {
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  function ms(v) { return v < 0 ? "–" : v < 10 ? v.toFixed(2) + " ms" : v < 1000 ? v.toFixed(0) + " ms" : (v / 1000).toFixed(2) + " s"; }
  function rate(v) { return v >= 100 ? v.toFixed(0) : v.toFixed(1); }
  function mib(b) { return (b / 1048576).toFixed(1) + " MiB"; }
  function spark(svg, data, w, h) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!data || data.length < 2) return svg;
    var mx = Math.max.apply(null, data) || 1, n = data.length, pts = [];
    for (var i = 0; i < n; i++) {
      pts.push((i * w / (n - 1)).toFixed(1) + "," + (h - 1 - data[i] / mx * (h - 2)).toFixed(1));
    }
    var area = document.createElementNS(SVG, "polygon");
    area.setAttribute("points", "0," + h + " " + pts.join(" ") + " " + w + "," + h);
    var line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(area);
    svg.appendChild(line);
    return svg;
  }
  function newSpark() {
    var s = document.createElementNS(SVG, "svg");
    s.setAttribute("class", "spark");
    s.setAttribute("viewBox", "0 0 120 28");
    s.setAttribute("preserveAspectRatio", "none");
    return s;
  }
  function fill(tbody, rows, cols, empty) {
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    if (!rows.length) {
      var tr = el("tr"), td = el("td", empty, "empty");
      td.colSpan = cols;
      tr.appendChild(td);
      tbody.appendChild(tr);
      return;
    }
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) { tr.appendChild(c); });
      tbody.appendChild(tr);
    });
  }
  function td(text, cls) { return el("td", text, cls); }
  function render(d) {
    var st = d.status, lv = d.live;
    $("app").textContent = st.app + (st.interface === "asgi" ? " (ASGI)" : "") + " · pid " + st.pid + " · " + st.version;
    var ready = $("ready");
    ready.textContent = st.ready ? "ready" : "not ready: " + (st.not_ready_reason || "");
    ready.className = st.ready ? "ok" : "bad";
    $("meta").textContent = "up " + dur(st.uptime_seconds);
    $("rate").textContent = rate(lv.rate);
    $("inflight").textContent = lv.in_flight;
    $("queued").textContent = st.queued;
    $("nworkers").textContent = st.workers.length;
    $("nbans").textContent = d.bans_total;
    var nr = 0;
    for (var k in lv.restart_counts) nr += lv.restart_counts[k];
    $("nrestarts").textContent = nr;
    spark($("ratechart"), lv.history, 300, 60);
    st.workers.sort(function (a, b) { return a.id - b.id || a.age_seconds - b.age_seconds; });
    fill($("workers"), st.workers.map(function (w) {
      var state = el("span", w.state + (w.loop_blocked ? " (loop blocked)" : ""), "state " + w.state);
      var stc = td(); stc.appendChild(state);
      var cur = w.current ? w.current.method + " " + w.current.path : "";
      var c = td(cur, "path"); c.title = cur;
      return [td(w.id), td(w.pid, "pid"), stc, c,
        td(w.current ? dur(w.current.elapsed_ms / 1000) : "", "num"),
        td(mib(w.rss_bytes), "num"), td(dur(w.age_seconds), "num hide-sm"), td(w.served, "num")];
    }), 8, "no workers");
    fill($("routes"), lv.routes.map(function (r) {
      var sc = td(); sc.appendChild(spark(newSpark(), r.history, 120, 28));
      var rc = td(r.route, "path"); rc.title = r.route;
      return [rc, td(rate(r.rate), "num"), td(ms(r.p50_ms), "num"), td(ms(r.p90_ms), "num"),
        td(ms(r.p99_ms), "num hide-sm"), td(r.total, "num hide-sm"), sc];
    }), 7, "no requests yet");
    fill($("restarts"), (lv.restarts || []).map(function (r) {
      return [td(new Date(r.at).toLocaleTimeString()), td(r.worker), td(r.pid), td(r.reason), td(r.served, "num")];
    }), 5, "none since start");
    var now = Date.now();
    fill($("bans"), d.bans.slice().reverse().map(function (b) {
      var left = b.until ? dur(Math.max(0, (Date.parse(b.until) - now) / 1000)) : "forever";
      return [td(b.addr), td(b.jail), td(left), td((b.blocked_requests || 0) + (b.refused_connections || 0), "num"), td(b.reason, "hide-sm")];
    }), 5, "no bans");
  }
  // An admin API on TCP reached from another host needs its token: give
  // it in the address's fragment (#token=...), which the browser never
  // sends, and the page sends it as a bearer token.
  var headers = {};
  var m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) headers.Authorization = "Bearer " + decodeURIComponent(m[1]);
  function tick() {
    fetch("live", { cache: "no-store", credentials: "same-origin", headers: headers }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (d) {
      $("err").textContent = "";
      render(d);
      document.body.setAttribute("data-updated", String(Date.now()));
    }).catch(function (e) {
      $("err").textContent = "cannot reach corral: " + e.message;
    }).then(function () { setTimeout(tick, 1000); });
  }
  tick();
})();
