/* The command console page: map (TwinMap), live sensors, alerts with acknowledge, incidents with
 * dispatch and evacuate (a trainee's actions, POST /api/actions), forecast runs.
 *
 * Data: GET /api/info, /api/sensors, /api/alerts, /api/runs, /api/scene/base,
 * /api/scene/forecast[?run=ID], /api/scene/compare?a=&b=; live changes from /api/stream
 * (Server-Sent Events), falling back to polling /api/changes. URLs are relative to the page, so
 * the console also works behind a reverse proxy that serves it under a path prefix.
 * The run list shows any finished run's forecast ("Show"), compares two (TwinMap.compare with
 * the B − A difference) and cancels a running one. A run without a model grid (agents on roads,
 * a building) is shown as its offline map draws it, in the view its kind asks for (a building
 * pitched). A finished run's events (GET /api/runs/{id}/events[?kind=K]: time, kind, severity,
 * message) are listed in the run's detail panel ("Events", or shown with its map), filterable by kind.
 * Actions send 'Authorization: Bearer <token>'; the token is typed once and kept in
 * sessionStorage (gone when the tab closes). No remote resources: everything comes from
 * this origin.
 *
 * Incidents (GET /api/incidents, live 'incident' messages) are listed with a unit type and Dispatch, and
 * Evacuate for the incident's district; the panel's form orders the evacuation of any district.
 * The live layers (incidents by status, open alerts by severity, sensors by status) have a legend
 * over the map (#live-legend) drawn from the colours the layers use.
 * Forecast cycles (runs `twin forecast` issued: run.forecast {issue_time, horizon_h, lead_times_s})
 * are labelled "Forecast issued 09-07 14:30 CST, +3 h" and told from what-if runs in the list; the
 * page opens on the newest cycle (else the newest finished run) and the navigator (#forecast-nav)
 * steps back through earlier cycles. Every time is shown in Shenzhen time (/api/info time_zone).
 * For tests: window.consoleFmtTime (the time formatter); window.consoleState {sensors, alerts, incidents, runs, seq, epoch, transport, received, lastDrawAt,
 * forecastRun, compare, detail}, window.consoleReady (map drew and the lists are loaded), window.consoleMap,
 * window.consoleCompare (the open compare view, or null).
 */
(function () {
  'use strict';

  var TOKEN_KEY = 'twinConsoleToken';
  var NAME_KEY = 'twinConsoleOperator';
  var POLL_MS = 1000;
  // Sensor statuses, their colours and labels come from the server (/api/info "statuses"), so the
  // page, the map layers and the API share one rule and one palette (twin/sensor_status.py).
  var STATUS = {order: [], attention: [], colors: {}, labels: {}};
  var UNKNOWN_COLOR = [128, 128, 128, 255];  // only until /api/info answered
  function statusColor(st) { return STATUS.colors[st] || STATUS.colors.offline || UNKNOWN_COLOR; }
  function attentionRank(st) {
    var i = STATUS.attention.indexOf(st);
    return i < 0 ? STATUS.attention.length : i;
  }

  var state = window.consoleState = {
    info: null, sensors: {}, alerts: {}, incidents: {}, runs: {}, seq: 0, epoch: '', transport: 'none', received: [],
    base: null, forecast: null, forecastRun: null, compare: null, detail: null, errors: []
  };
  window.consoleReady = false;
  var map = null;

  // ------------------------------------------------------------------ helpers
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, parent, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function token() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } }
  function operator() {
    var typed = ($('operator') && $('operator').value.trim()) || '';
    try {
      if (typed) sessionStorage.setItem(NAME_KEY, typed);
      return typed || sessionStorage.getItem(NAME_KEY) || 'console operator';
    } catch (e) { return typed || 'console operator'; }
  }
  // Times are shown in Shenzhen time whatever the browser's zone: the server names the zone
  // (/api/info time_zone: Asia/Shanghai, +480 min, "CST"; no daylight saving since 1991, so a
  // fixed offset is exact): "09-07 14:20:05 CST". Stored times are UTC ISO strings.
  var ZONE = {name: 'Asia/Shanghai', label: 'CST', offset_min: 480};
  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function zoned(iso) {
    if (!iso) return null;
    var ms = Date.parse(iso);
    if (isNaN(ms)) return null;
    return new Date(ms + ZONE.offset_min * 60000);  // read with getUTC*: the wall clock in ZONE
  }
  function fmtTime(iso, noSeconds) {
    if (!iso) return '—';
    var d = zoned(iso);
    if (!d) return String(iso);
    return pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate()) + ' ' + pad2(d.getUTCHours()) + ':' +
      pad2(d.getUTCMinutes()) + (noSeconds ? '' : ':' + pad2(d.getUTCSeconds())) + ' ' + ZONE.label;
  }
  window.consoleFmtTime = fmtTime;  // for tests: the one formatter of every time on the page
  function fmtValue(v, unit) {
    if (v === null || v === undefined) return '—';
    var a = Math.abs(v);
    var s = a !== 0 && (a < 0.01 || a >= 1e5) ? v.toExponential(2) : String(+v.toFixed(3));
    return unit ? s + ' ' + unit : s;
  }
  // A sensor's reading as the operator reads it: the server's display form (row.shown: the
  // kind's unit and decimals) when present, else the stored SI value.
  function sensorValue(s) {
    if (s.shown && s.shown.value !== undefined && s.shown.value !== null) return String(s.shown.value);
    return fmtValue(s.value, s.unit);
  }
  // Thresholds in the unit they were set in: "warning ≥ 50 mm (1 h)".
  function thresholdText(s) {
    var list = Array.isArray(s.thresholds) ? s.thresholds : [];
    return list.map(function (t) {
      var w = t.window_h ? ' (' + t.window_h + ' h)' : '';
      return (t.label || t.severity || '') + ' ' + (t.op || '≥') + ' ' + t.threshold +
        (t.unit ? ' ' + t.unit : '') + w;
    }).join('; ');
  }
  function unplaced(s) {
    return s.placed === false || s.lon === null || s.lon === undefined || s.lat === null || s.lat === undefined;
  }
  function rgba(c) { return 'rgba(' + c[0] + ',' + c[1] + ',' + c[2] + ',' + (c[3] / 255) + ')'; }

  function showMessage(text, ok) {
    var m = $('message');
    if (!text) { m.hidden = true; document.body.classList.remove('has-message'); return; }
    m.textContent = text;
    m.className = 'message' + (ok ? ' ok' : '');
    m.hidden = false;
    document.body.classList.add('has-message');
  }

  function getJSON(url) {
    return fetch(url, {headers: {Accept: 'application/json'}, cache: 'no-store'}).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error((body && body.reason) || ('HTTP ' + r.status));
        return body;
      });
    });
  }

  // POST with the token; resolves {status, body} whatever the status.
  function act(url, body) {
    var headers = {'Content-Type': 'application/json', Accept: 'application/json'};
    var t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    headers['X-Twin-Operator'] = encodeURIComponent(operator());  // a header is Latin-1: names may not be
    return fetch(url, {method: 'POST', headers: headers, body: JSON.stringify(body || {})})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (b) { return {status: r.status, body: b}; });
      });
  }

  function refusal(res) {
    var b = res.body || {};
    if (res.status === 401) return 'refused (401): ' + (b.reason || 'a token is needed') + ' — type the token above';
    if (res.status === 403) return 'refused (403): ' + (b.reason || 'wrong token');
    if (b.field) return 'invalid ' + b.field + ' = ' + JSON.stringify(b.value) + ': ' + b.reason;
    return 'failed (' + res.status + '): ' + (b.reason || 'error');
  }

  // ------------------------------------------------------------------ banner and token
  function updateBanner() {
    var b = $('banner');
    var text = '';
    if (state.info && !state.info.actions) {
      text = 'Read-only console: it was started without a token, so nobody can acknowledge alerts, dispatch, evacuate or start runs here.';
    } else if (!token()) {
      text = 'Read-only: type the token above to acknowledge alerts, dispatch units, order evacuations or start forecast runs.';
    }
    b.textContent = text;
    b.hidden = !text;
    document.body.classList.toggle('has-banner', !!text);
    document.body.classList.toggle('readonly', !!text);
  }

  function setupToken() {
    try { $('operator').value = sessionStorage.getItem(NAME_KEY) || ''; } catch (e) { /* storage off */ }
    $('token-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var v = $('token').value.trim();
      try { if (v) sessionStorage.setItem(TOKEN_KEY, v); } catch (e) { /* storage off */ }
      $('token').value = '';
      updateBanner();
      showMessage(v ? 'Token kept for this tab.' : '', true);
    });
    $('token-forget').addEventListener('click', function () {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage off */ }
      updateBanner();
      showMessage('Token forgotten: the console is read-only.', true);
    });
  }

  // ------------------------------------------------------------------ map
  function sensorLayer() {
    var data = Object.keys(state.sensors).map(function (k) { return state.sensors[k]; })
      .filter(function (s) { return s.lon !== null && s.lat !== null && s.lon !== undefined; });
    return new deck.ScatterplotLayer({
      id: 'live-sensors', data: data, pickable: true, stroked: true,
      getPosition: function (s) { return [s.lon, s.lat]; },
      getFillColor: function (s) { return statusColor(s.status); },
      getLineColor: [255, 255, 255, 255], lineWidthMinPixels: 1,
      getRadius: function (s) { return s.status === 'alarm' ? 9 : 6; }, radiusUnits: 'pixels',
      updateTriggers: {getFillColor: state.seq, getRadius: state.seq}
    });
  }

  function alertLayer() {
    var pts = [];
    Object.keys(state.alerts).forEach(function (k) {
      var a = state.alerts[k];
      if (a.status !== 'open') return;
      if (a.cleared) return;
      var d = a.data || {};
      if (typeof d.lon === 'number' && typeof d.lat === 'number') {
        pts.push({position: [d.lon, d.lat], severity: a.severity});
        return;
      }
      var s = state.sensors[d.datastream || a.source];
      if (s && s.lon !== null && s.lon !== undefined) pts.push({position: [s.lon, s.lat], severity: a.severity});
    });
    var col = ALERT_COLORS;
    return new deck.ScatterplotLayer({
      id: 'live-alerts', data: pts, stroked: true, filled: false,
      getPosition: function (p) { return p.position; },
      getLineColor: function (p) { return col[p.severity] || col.warning; },
      lineWidthMinPixels: 3, getRadius: 16, radiusUnits: 'pixels',
      updateTriggers: {getLineColor: state.seq}
    });
  }

  // The live layers' colours, drawn by the layers below and shown by the live legend (liveLegend).
  var ALERT_COLORS = {advisory: [47, 111, 179, 255], warning: [217, 138, 0, 255], alarm: [198, 32, 32, 255]};
  var INCIDENT_COLORS = {open: [142, 36, 170, 255], dispatched: [206, 147, 216, 255]};
  var INCIDENT_LABELS = {open: 'open: no unit dispatched yet', dispatched: 'a unit dispatched'};

  // Incidents not closed: purple while open, pale once a unit is dispatched.
  function incidentLayer() {
    var data = Object.keys(state.incidents).map(function (k) { return state.incidents[k]; })
      .filter(function (i) { return i.status !== 'closed' && typeof i.lon === 'number' && typeof i.lat === 'number'; });
    return new deck.ScatterplotLayer({
      id: 'live-incidents', data: data, stroked: true,
      getPosition: function (i) { return [i.lon, i.lat]; },
      getFillColor: function (i) { return INCIDENT_COLORS[i.status] || INCIDENT_COLORS.open; },
      getLineColor: [255, 255, 255, 255], lineWidthMinPixels: 2, getRadius: 9, radiusUnits: 'pixels',
      updateTriggers: {getFillColor: state.seq}
    });
  }

  // The legend of the live layers, in the map pages' legend style (TwinMap's .tm-panel, h4, .tm-swatch):
  // incidents by status (dots as drawn, with their counts), open alerts by severity (rings), sensors
  // by status. Redrawn with the layers.
  function liveLegend() {
    var box = $('live-legend');
    if (!box) {
      box = el('div', 'tm-panel live-legend', $('map-wrap'));
      box.id = 'live-legend';
    }
    box.textContent = '';
    var inc = {open: 0, dispatched: 0};
    Object.keys(state.incidents).forEach(function (k) {
      var st = state.incidents[k].status;
      if (st in inc) inc[st] += 1;
    });
    function section(title, rows, shape) {
      var sec = el('div', 'lg-sec', box);
      el('h4', null, sec, title);
      rows.forEach(function (row) {
        var line = el('div', 'lg-row', sec);
        line.dataset.key = row[0];
        var sw = el('span', 'tm-swatch lg-' + shape, line);
        sw.dataset.color = row[1].join(',');
        if (shape === 'ring') sw.style.borderColor = rgba(row[1]); else sw.style.background = rgba(row[1]);
        line.appendChild(document.createTextNode(row[2]));
      });
      return sec;
    }
    section('Incidents', Object.keys(INCIDENT_COLORS).map(function (k) {
      return [k, INCIDENT_COLORS[k], INCIDENT_LABELS[k] + ' (' + inc[k] + ')'];
    }), 'dot').id = 'legend-incidents';
    section('Open alerts', Object.keys(ALERT_COLORS).map(function (k) { return [k, ALERT_COLORS[k], k]; }),
      'ring').id = 'legend-alerts';
    section('Sensors', (STATUS.order || []).map(function (k) { return [k, statusColor(k), k]; }),
      'dot').id = 'legend-sensors';
    box.hidden = state.liveOn === false;
  }

  // Live layers (sensors, open alerts, incidents) live in their own deck.gl canvas over the map, with the
  // map's view: a reading redraws two small layers, not the basemap (which, rendered in
  // software on a machine without a GPU, takes up to a second per frame).
  var live = null;
  function mountLive(m) {
    var box = el('div', 'live-layer', $('map-wrap'));
    live = window.consoleLive = new deck.Deck({
      parent: box, viewState: m.viewState, controller: false, layers: [],
      style: {pointerEvents: 'none'},
      onAfterRender: function () { state.liveDrawCount = (state.liveDrawCount || 0) + 1; }
    });
    live.drawCount = 0;
    var tip = el('div', 'live-tip', $('map-wrap'));
    tip.hidden = true;
    $('map-wrap').addEventListener('mousemove', function (ev) {
      var r = $('map-wrap').getBoundingClientRect();
      var info = live.isInitialized && live.pickObject({x: ev.clientX - r.left, y: ev.clientY - r.top, radius: 4,
        layerIds: ['live-sensors']});
      var s = info && info.object;
      if (!s) { tip.hidden = true; return; }
      var th = thresholdText(s);
      tip.textContent = (s.name || s.id) + ' (' + s.kind + '): ' + sensorValue(s) + ' · ' + s.status +
        (s.time ? ' · ' + fmtTime(s.time) : '') + (th ? ' · ' + th : '');
      tip.style.left = (ev.clientX - r.left + 12) + 'px';
      tip.style.top = (ev.clientY - r.top + 12) + 'px';
      tip.hidden = false;
    });
  }

  function syncLiveView(vs) {
    if (live) live.setProps({viewState: Object.assign({}, vs || map.viewState)});
  }

  // Coalesce bursts of changes into one layer update; lastDrawAt is when deck.gl drew it.
  var redrawQueued = false;
  function redrawLive() {
    if (!live || redrawQueued) return;
    redrawQueued = true;
    setTimeout(function () {
      redrawQueued = false;
      var before = state.liveDrawCount || 0;
      live.setProps({layers: state.liveOn === false ? [] : [sensorLayer(), alertLayer(), incidentLayer()]});
      liveLegend();
      state.liveDraws = (state.liveDraws || 0) + 1;
      (function drawn() {
        if ((state.liveDrawCount || 0) > before) state.lastDrawAt = Date.now() / 1000;
        else requestAnimationFrame(drawn);
      })();
    }, 0);
  }

  // Forecast layers go above the terrain and district outlines but under roads and metro.
  var ABOVE_FORECAST = {roads: true, metro_lines: true, metro_stations: true};
  function overlay(baseLayers, fcLayers) {
    var k = baseLayers.findIndex(function (l) { return ABOVE_FORECAST[l.id]; });
    if (k < 0) k = baseLayers.length;
    return baseLayers.slice(0, k).concat(fcLayers, baseLayers.slice(k));
  }

  // The view that shows [west, south, east, north] in the map's current size (scenes carry
  // their bounds; their own view assumes some other size).
  function fitView(b) {
    var box = $('map-wrap');
    if (!b || !box.clientWidth || !box.clientHeight) return null;
    try {
      var vp = new deck.WebMercatorViewport({width: box.clientWidth, height: box.clientHeight});
      var f = vp.fitBounds([[b[0], b[1]], [b[2], b[3]]], {padding: Math.min(40, box.clientWidth / 10)});
      return {longitude: f.longitude, latitude: f.latitude, zoom: f.zoom, pitch: 0, bearing: 0};
    } catch (e) {
      return null;
    }
  }

  function composeScene() {
    var base = state.base || {title: 'basemap', view: null, layers: [], legends: [], timeline: null};
    var fc = state.forecast;
    var scene = {
      title: fc && fc.run ? fc.title : base.title,
      view: (map && map.viewState) || base.view || (fc && fc.view),
      layers: overlay(base.layers || [], fc ? fc.layers || [] : []),
      legends: (base.legends || []).concat(fc ? fc.legends || [] : []),
      toggles: (base.toggles || []).concat(fc ? fc.toggles || [] : []),
      timeline: fc && fc.timeline ? fc.timeline : null
    };
    return scene;
  }

  // A forecast cycle's map is titled by its issue time and horizon (the slider gives the lead).
  // Its slider reads the valid time and the lead: "14:40 CST (+10 min)".
  function titleCycle(fc) {
    if (!(fc && fc.forecast && fc.run)) return fc;
    fc.title = cycleLabel(fc.forecast) + ' — run #' + fc.run;
    var tl = fc.timeline, t0 = Date.parse(fc.forecast.issue_time);
    if (tl && Array.isArray(tl.times_s) && !isNaN(t0) && !tl.validTimes) {
      tl.labels = tl.times_s.map(function (t, i) {
        var was = (tl.labels && tl.labels[i]) || '', k = was.indexOf(' — ');  // keep "— largest flooded area"
        return fmtTime(new Date(t0 + t * 1000).toISOString(), true).slice(6) + ' (' + (t ? fmtLead(t) : 'issue') +
          ')' + (k >= 0 ? was.slice(k) : '');
      });
      tl.validTimes = true;
    }
    return fc;
  }

  // The map of run `runId` (a finished run), or of the newest forecast cycle.
  function loadForecast(runId) {
    var url = 'api/scene/forecast' + (runId ? '?run=' + encodeURIComponent(runId) : '');
    return getJSON(url).then(function (fc) {
      if (state.forecastRun === fc.run && state.forecast) return;
      titleCycle(fc);
      state.forecast = fc;
      state.forecastRun = fc.run;
      renderRuns();
      if (!map) return;
      return map.setScene(composeScene()).then(function () {
        // show the new forecast: its area, at its last lead time; a run without a grid opens in
        // the view its kind asks for (e.g. a building pitched so its floors stand up)
        var v = (fc.gridded === false && fc.view) ? fc.view : (fitView(fc.bounds) || fc.view);
        if (v) { map.setView(v); syncLiveView(map.viewState); }
        if (map.frameCount > 1) return map.setFrame(map.frameCount - 1);
      });
    });
  }

  // ------------------------------------------------------------------ alerts
  function renderAlert(a) {
    var ul = $('alerts');
    var li = document.getElementById('alert-' + a.id);
    if (!li) {
      li = el('li', null, null);
      li.id = 'alert-' + a.id;
      // newest first: insert before the first item with a smaller id
      var before = null;
      for (var i = 0; i < ul.children.length; i++) {
        if (Number(ul.children[i].dataset.id) < a.id) { before = ul.children[i]; break; }
      }
      ul.insertBefore(li, before);
    }
    li.dataset.id = a.id;
    li.className = 'alert ' + a.status;
    li.textContent = '';
    var head = el('div', 'head', li);
    el('span', 'sev sev-' + a.severity, head, a.severity);
    el('span', 'src', head, a.source || a.kind);
    el('span', 'when', head, fmtTime(a.wall_time));
    el('div', 'msg', li, a.message || a.kind);
    if (a.cleared) el('div', 'clearedline', li, 'cleared at ' + fmtTime(a.cleared));
    if (a.ack) {
      el('div', 'ackline', li, 'acknowledged by ' + (a.ack.by || '?') + ' at ' + fmtTime(a.ack.at));
    } else {
      var btn = el('button', 'act ack', li, 'Acknowledge');
      btn.type = 'button';
      btn.addEventListener('click', function () { acknowledge(a.id, li, btn); });
    }
  }

  function acknowledge(id, li, btn) {
    btn.disabled = true;
    act('api/alerts/' + id + '/ack', {by: operator()}).then(function (res) {
      if (res.status === 200) {
        state.alerts[id] = Object.assign({}, state.alerts[id], {status: 'acknowledged', ack: res.body.ack});
        renderAlert(state.alerts[id]);
        updateCounts();
        redrawLive();
        showMessage('Alert ' + id + ' acknowledged.', true);
      } else {
        var text = refusal(res);
        var old = li.querySelector('.refused');
        if (old) old.remove();
        el('div', 'refused', li, text);
        btn.disabled = false;
        showMessage('Alert ' + id + ': ' + text);
      }
    }).catch(function (err) {
      btn.disabled = false;
      showMessage('Alert ' + id + ': ' + err.message);
    });
  }

  function setAlerts(list) {
    state.alerts = {};
    $('alerts').textContent = '';
    list.slice().reverse().forEach(function (a) { state.alerts[a.id] = a; renderAlert(a); });
    updateCounts();
  }

  // ------------------------------------------------------------------ incidents
  var UNIT_FOR = {fire: 'engine', medical: 'ambulance', flood_rescue: 'rescue', collapse: 'rescue'};
  var UNIT_TYPES = ['engine', 'ambulance', 'rescue'];

  function renderIncident(inc) {
    var ul = $('incidents');
    var li = document.getElementById('incident-' + inc.id);
    if (inc.status === 'closed') { if (li) li.remove(); return; }
    if (!li) {
      li = el('li', null, null);
      li.id = 'incident-' + inc.id;
      var before = null;
      for (var i = 0; i < ul.children.length; i++) {
        if (Number(ul.children[i].dataset.id) < inc.id) { before = ul.children[i]; break; }
      }
      ul.insertBefore(li, before);
    }
    li.dataset.id = inc.id;
    li.className = 'incident ' + inc.status;
    li.textContent = '';
    var head = el('div', 'head', li);
    el('span', 'itype', head, String(inc.incident || 'incident').replace('_', ' '));
    el('span', 'where', head, (inc.district ? inc.district + ' · ' : '') +
       (typeof inc.lon === 'number' ? inc.lon.toFixed(4) + ', ' + inc.lat.toFixed(4) : ''));
    el('span', 'when', head, fmtTime(inc.wall_time));
    el('div', 'msg', li, inc.message || inc.incident);
    (inc.dispatches || []).forEach(function (d) {
      el('div', 'doneline', li, 'dispatched ' + (d.units || 1) + ' ' + d.unit_type + ' by ' + (d.by || '?') +
         ' at ' + fmtTime(d.at));
    });
    (inc.evacuations || []).forEach(function (d) {
      el('div', 'doneline', li, 'evacuation of ' + (d.districts || []).join(', ') + ' ordered by ' +
         (d.by || '?') + ' at ' + fmtTime(d.at));
    });
    var ctl = el('div', 'ctl', li);
    var sel = el('select', 'unit', ctl);
    UNIT_TYPES.forEach(function (u) { var o = el('option', null, sel, u); o.value = u; });
    sel.value = UNIT_FOR[inc.incident] || 'rescue';
    var btn = el('button', 'act dispatch', ctl, 'Dispatch');
    btn.type = 'button';
    btn.addEventListener('click', function () {
      sendAction({action: 'dispatch', incident_id: inc.id, unit_type: sel.value, units: 1, by: operator()},
                 li, btn, 'Incident ' + inc.id + ': ' + sel.value + ' dispatched.');
    });
    if (inc.district) {
      var ev = el('button', 'act evacuate', ctl, 'Evacuate ' + inc.district);
      ev.type = 'button';
      ev.addEventListener('click', function () {
        sendAction({action: 'evacuate', districts: [inc.district], incident_id: inc.id, by: operator()},
                   li, ev, 'Evacuation of ' + inc.district + ' ordered.');
      });
    }
  }

  // POST /api/actions; on success the incident comes back as it now stands.
  function sendAction(body, li, btn, okText) {
    btn.disabled = true;
    return act('api/actions', body).then(function (res) {
      btn.disabled = false;
      if (res.status === 201) {
        if (res.body.incident) { state.incidents[res.body.incident.id] = res.body.incident; renderIncident(res.body.incident); }
        updateIncidentCount();
        redrawLive();
        showMessage(okText, true);
        return res;
      }
      var text = refusal(res);
      if (li) {
        var old = li.querySelector('.refused');
        if (old) old.remove();
        el('div', 'refused', li, text);
      }
      showMessage(text);
      return res;
    }).catch(function (err) { btn.disabled = false; showMessage('Action: ' + err.message); });
  }

  function updateIncidentCount() {
    var open = Object.keys(state.incidents).filter(function (k) { return state.incidents[k].status === 'open'; });
    $('incident-count').textContent = open.length ? String(open.length) : '';
  }

  function setIncidents(list) {
    state.incidents = {};
    $('incidents').textContent = '';
    list.slice().reverse().forEach(function (inc) { state.incidents[inc.id] = inc; renderIncident(inc); });
    updateIncidentCount();
    redrawLive();
  }

  function setupEvacuate(info) {
    var sel = $('evacuate-district');
    (info.districts || []).forEach(function (d) { var o = el('option', null, sel, d); o.value = d; });
    $('evacuate-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (!sel.value) return;
      sendAction({action: 'evacuate', districts: [sel.value], by: operator()}, $('incidents-panel'),
                 $('evacuate-order'), 'Evacuation of ' + sel.value + ' ordered.');
    });
  }

  // ------------------------------------------------------------------ sensors
  var sensorRenderQueued = false;
  function renderSensors() {
    if (sensorRenderQueued) return;
    sensorRenderQueued = true;
    setTimeout(function () {
      sensorRenderQueued = false;
      var ul = $('sensors');
      ul.textContent = '';
      var list = Object.keys(state.sensors).map(function (k) { return state.sensors[k]; });
      list.sort(function (a, b) {
        return (attentionRank(a.status) - attentionRank(b.status)) || (a.id < b.id ? -1 : 1);
      });
      list.slice(0, 300).forEach(function (s) {
        var li = el('li', 'sensor', ul);
        li.id = 'sensor-' + s.id;
        li.dataset.status = s.status;
        var dot = el('span', 'dot', li);
        dot.style.background = rgba(statusColor(s.status));
        dot.title = s.status + ': ' + (STATUS.labels[s.status] || '');
        var th = thresholdText(s);
        el('span', 'sid', li, s.id).title = (s.name || s.id) + ' — ' + s.status +
          (th ? '\nthresholds: ' + th : '') + (unplaced(s) ? '\nno position: not on the map' : '');
        if (unplaced(s)) el('span', 'noplace', li, 'no position').title = 'this sensor has no position: it is not on the map';
        var val = el('span', 'val', li, sensorValue(s));
        if (th) val.title = 'thresholds: ' + th;
        el('span', 'when', li, s.time ? fmtTime(s.time) : '');
      });
      updateCounts();
    }, 0);
  }

  function setSensors(list) {
    state.sensors = {};
    list.forEach(function (s) { state.sensors[s.id] = s; });
    renderSensors();
    redrawLive();
  }

  function updateCounts() {
    var by = {}, n = 0;
    STATUS.attention.forEach(function (st) { by[st] = 0; });
    Object.keys(state.sensors).forEach(function (k) {
      var st = state.sensors[k].status;
      by[st] = (by[st] || 0) + 1;
      n += 1;
    });
    var open = Object.keys(state.alerts).filter(function (k) { return state.alerts[k].status === 'open'; }).length;
    $('counts').textContent = n + ' sensors: ' +
      STATUS.attention.map(function (st) { return by[st] + ' ' + st; }).join(', ') + ' · ' + open + ' open alerts';
    $('sensor-count').textContent = n;
    $('alert-count').textContent = open;
  }

  // ------------------------------------------------------------------ runs
  function runButton(li, cls, text, title, onClick) {
    var b = el('button', 'act ' + cls, li, text);
    b.type = 'button';
    b.title = title;
    b.addEventListener('click', function () { onClick(b); });
    return b;
  }

  function renderRuns() {
    var ul = $('runs');
    ul.textContent = '';
    var ids = Object.keys(state.runs).map(Number).sort(function (a, b) { return b - a; });
    var active = null;
    ids.slice(0, 20).forEach(function (id) {
      var r = state.runs[id];
      var li = el('li', 'run ' + (r.forecast ? 'cycle' : 'whatif'), ul);
      li.id = 'run-' + id;
      li.dataset.status = r.status;
      var st = r.cancelling && r.status === 'running' ? 'cancelling' : r.status;
      el('span', 'rkind', li, r.forecast ? 'Forecast' : 'What-if').title = r.forecast ?
        'a forecast cycle issued from the live sensors (twin forecast)' : 'a run started from the form or a scenario';
      var txt = r.forecast ? cycleLabel(r.forecast) + ' · #' + id + (r.status === 'done' ? '' : ' ' + st) +
        (r.forecast.warm_start_run ? ' · warm start from #' + r.forecast.warm_start_run : '') :
        '#' + id + ' ' + (r.title || r.kind) + ' ' + st + ' — ' + (r.description || '');
      Object.keys(r.summary || {}).forEach(function (k) {  // the kind's summary_keys
        var v = r.summary[k];
        if (typeof v === 'number') {
          txt += ' · ' + k.replace(/_/g, ' ') + ' ' + (Number.isInteger(v) ? String(v) : (+v).toPrecision(3));
        }
      });
      if (r.error) txt += ' · ' + r.error;
      el('span', 'rtext', li, txt);
      if (r.status === 'done' && r.has_outputs) {
        if (state.forecastRun === id) {
          li.classList.add('shown');
          el('span', 'shown-tag', li, 'on the map');
        } else {
          runButton(li, 'show', 'Show', 'show this run\'s forecast on the map', function () {
            closeCompare();
            loadForecast(id).then(function () { showMessage('Showing run ' + id + '.', true); })
              .catch(function (err) { showMessage('Run ' + id + ': ' + err.message); });
            openRunEvents(id, null).catch(function (err) { showMessage('Run ' + id + ' events: ' + err.message); });
          });
        }
        if (!state.detail || state.detail.run !== id) {
          runButton(li, 'events', 'Events', 'list the events this run stored', function () {
            openRunEvents(id, null).catch(function (err) { showMessage('Run ' + id + ' events: ' + err.message); });
          });
        }
      }
      if (r.status === 'running') {
        if (!active) active = r;
        var c = runButton(li, 'cancel', 'Cancel', 'stop this run at its next progress report', function (btn) {
          cancelRun(id, btn);
        });
        c.disabled = !!r.cancelling;
      }
    });
    var box = $('run-progress');
    if (active) {
      box.hidden = false;
      var f = Math.max(0, Math.min(1, active.fraction || 0));
      box.querySelector('.bar').style.width = (100 * f).toFixed(1) + '%';
      box.querySelector('.text').textContent = 'run ' + active.id + ': ' + (active.phase || '') + ' ' +
        Math.round(100 * f) + '%';
    } else {
      box.hidden = true;
    }
    $('run-start').disabled = !!active;
    renderCompareChoices();
    fillRunRefs();
    renderForecastNav();
  }

  // ------------------------------------------------------------------ forecast cycles
  // "+3 h", "+90 min": a lead time or horizon ahead of the issue time.
  function fmtLead(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '';
    return s < 3600 ? '+' + Math.round(s / 60) + ' min' : '+' + (+(s / 3600).toFixed(1)) + ' h';
  }
  // A forecast cycle (a run's `forecast`: issue_time, horizon_h) as command staff read it.
  function cycleLabel(f) {
    var ahead = typeof f.horizon_h === 'number' ? ', ' + fmtLead(f.horizon_h * 3600) : '';
    return 'Forecast issued ' + fmtTime(f.issue_time, true) + ahead;
  }
  // Finished forecast cycles with outputs, newest issue time first.
  function forecastCycles() {
    return Object.keys(state.runs).map(function (k) { return state.runs[k]; })
      .filter(function (r) { return r.forecast && r.status === 'done' && r.has_outputs; })
      .sort(function (a, b) {
        var ta = Date.parse(a.forecast.issue_time) || 0, tb = Date.parse(b.forecast.issue_time) || 0;
        return (tb - ta) || (b.id - a.id);
      }).map(function (r) { return r.id; });
  }
  function showCycle(id) {
    closeCompare();
    return loadForecast(id).then(function () {
      openRunEvents(id, null, true).catch(function () { return null; });
    }).catch(function (err) { showMessage('Forecast #' + id + ': ' + err.message); });
  }
  // The navigator over the cycles: which one the map shows, earlier / later / latest.
  function renderForecastNav() {
    var ids = forecastCycles(), k = ids.indexOf(state.forecastRun);
    var label = $('fc-label');
    if (!ids.length) {
      label.textContent = 'No forecast issued yet (twin forecast issues them)';
    } else if (k < 0) {
      label.textContent = 'Map: ' + (state.forecastRun ? 'what-if run #' + state.forecastRun : 'no run') +
        ' · latest forecast: ' + cycleLabel(state.runs[ids[0]].forecast).replace('Forecast issued', 'issued');
    } else {
      label.textContent = cycleLabel(state.runs[ids[k]].forecast) + ' (' + (k + 1) + ' of ' + ids.length +
        (k === 0 ? ', latest' : ', not the latest') + ')';
    }
    $('forecast-nav').dataset.index = String(k);
    $('forecast-nav').classList.toggle('old', k > 0);
    $('fc-prev').disabled = !ids.length || k === ids.length - 1;
    $('fc-next').disabled = k <= 0;
    $('fc-latest').disabled = !ids.length || k === 0;
  }
  function setupForecastNav() {
    function go(step) {
      var ids = forecastCycles(), k = ids.indexOf(state.forecastRun);
      var j = step === 0 || k < 0 ? 0 : k + step;
      if (j >= 0 && j < ids.length) showCycle(ids[j]);
    }
    $('fc-prev').addEventListener('click', function () { go(1); });
    $('fc-next').addEventListener('click', function () { go(-1); });
    $('fc-latest').addEventListener('click', function () { go(0); });
  }

  function cancelRun(id, btn) {
    btn.disabled = true;
    act('api/runs/' + id + '/cancel', {}).then(function (res) {
      if (res.status === 202) {
        if (!putRun(res.body)) return;  // the feed already told the page it ended (its message stays)
        renderRuns();
        showMessage('Run ' + id + ' is being cancelled: it stops at its next progress report.', true);
      } else {
        btn.disabled = false;
        showMessage('Cancel run ' + id + ': ' + refusal(res));
      }
    }).catch(function (err) { btn.disabled = false; showMessage('Cancel run ' + id + ': ' + err.message); });
  }

  // ------------------------------------------------------------------ a run's events
  function fmtSim(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '—';
    if (Math.abs(s) < 60) return s.toFixed(s % 1 ? 1 : 0) + ' s';
    var t = Math.round(s), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
    return (h ? h + ':' + (m < 10 ? '0' : '') : '') + m + ':' + (sec < 10 ? '0' : '') + sec;
  }

  // The events run `id` stored (of event kind `kind`, or all), in the detail panel. `quiet`: leave
  // the panel as it is when the run stored no events (a flood forecast has none).
  function openRunEvents(id, kind, quiet) {
    var url = 'api/runs/' + encodeURIComponent(id) + '/events' + (kind ? '?kind=' + encodeURIComponent(kind) : '');
    return getJSON(url).then(function (body) {
      if (quiet && body.total === 0) return body;
      state.detail = {run: id, kind: kind || null, total: body.total, counts: body.counts,
                      shown: body.events.length};
      var box = $('run-detail');
      box.hidden = false;
      $('detail-run').textContent = '#' + id;
      $('event-count').textContent = String(body.total);
      var sel = $('event-kind');
      sel.textContent = '';
      var all = el('option', null, sel, 'all kinds (' + body.total + ')');
      all.value = '';
      Object.keys(body.counts).forEach(function (k) {
        var o = el('option', null, sel, k.replace(/_/g, ' ') + ' (' + body.counts[k] + ')');
        o.value = k;
      });
      sel.value = kind || '';
      var n = kind ? (body.counts[kind] || 0) : body.total;
      $('event-note').textContent = body.total === 0 ? 'This run stored no events.' :
        (body.events.length < n ? 'The first ' + body.events.length + ' of ' + n + ' events.' :
          'Simulated events of run #' + id + ' (times after the run\'s start); not live alerts.');
      var tb = $('run-events').querySelector('tbody');
      tb.textContent = '';
      body.events.forEach(function (e) {
        var tr = el('tr', 'event', tb);
        tr.dataset.kind = e.kind;
        tr.dataset.time = e.time_s;
        tr.title = (e.source ? 'from ' + e.source + '; ' : '') + 'click: the map at this time';
        tr.addEventListener('click', function () { showEventTime(id, e.time_s); });
        el('td', 't', tr, fmtSim(e.time_s));
        el('td', 'k', tr, e.kind.replace(/_/g, ' '));
        el('span', 'sev-' + e.severity, el('td', 'sev', tr), e.severity);
        el('td', 'm', tr, e.message);
      });
      renderRuns();
      return body;
    });
  }

  // Move the map's time slider to the frame showing time `t` of run `id` (when that run is on the map).
  function showEventTime(id, t) {
    var tl = state.forecast && state.forecast.timeline;
    if (!map || state.forecastRun !== id || !tl || !tl.times_s || !map.frameCount) return null;
    var k = 0;
    for (var i = 0; i < tl.times_s.length && i < map.frameCount; i++) if (tl.times_s[i] <= t) k = i;
    return map.setFrame(k);
  }

  function setupRunDetail() {
    $('event-kind').addEventListener('change', function () {
      if (!state.detail) return;
      var id = state.detail.run;
      openRunEvents(id, $('event-kind').value || null)
        .catch(function (err) { showMessage('Run ' + id + ' events: ' + err.message); });
    });
    $('event-filter').addEventListener('submit', function (ev) { ev.preventDefault(); });
    $('detail-close').addEventListener('click', function () {
      $('run-detail').hidden = true;
      state.detail = null;
      renderRuns();
    });
  }

  // ------------------------------------------------------------------ compare two runs
  function doneRuns() {
    return Object.keys(state.runs).map(Number).sort(function (a, b) { return b - a; })
      .filter(function (id) { return state.runs[id].status === 'done' && state.runs[id].has_outputs; });
  }

  function renderCompareChoices() {
    var ids = doneRuns();
    var form = $('compare-form');
    form.hidden = ids.length < 2;
    ['compare-a', 'compare-b'].forEach(function (sid, k) {
      var sel = $(sid), keep = sel.value;
      sel.textContent = '';
      ids.forEach(function (id) {
        var r = state.runs[id];
        var o = el('option', null, sel, '#' + id + ' ' + (r.forecast ? cycleLabel(r.forecast) : (r.description || r.kind)));
        o.value = String(id);
      });
      if (keep && ids.indexOf(Number(keep)) >= 0) sel.value = keep;
      else if (ids.length) sel.value = String(ids[Math.min(ids.length - 1, k === 0 ? 1 : 0)]);
    });
  }

  function withBase(sc) {
    var base = state.base || {layers: [], legends: [], toggles: []};
    var view = fitView(sc.bounds) || sc.view;
    return {
      title: sc.title, view: view, layers: overlay(base.layers || [], sc.layers || []),
      legends: (base.legends || []).concat(sc.legends || []),
      toggles: (base.toggles || []).concat(sc.toggles || []), timeline: sc.timeline || null
    };
  }

  function openCompare(a, b) {
    return getJSON('api/scene/compare?a=' + encodeURIComponent(a) + '&b=' + encodeURIComponent(b))
      .then(function (cmp) {
        closeCompare();
        var box = $('compare-view');
        box.hidden = false;
        $('compare-title').textContent = cmp.title + ' — right pane: tick "show difference" for B − A';
        var maps = $('compare-maps');
        var diff = withBase(cmp.diff);
        diff.view = withBase(cmp.a).view;
        state.compare = {a: a, b: b, variable: cmp.variable};
        window.consoleCompare = TwinMap.compare(maps, withBase(cmp.a), withBase(cmp.b), diff, {});
        renderRuns();
        return window.consoleCompare;
      });
  }

  function closeCompare() {
    var cmp = window.consoleCompare;
    if (!cmp) return;
    [cmp.a, cmp.b].forEach(function (m) {
      try { if (m && m.deck) m.deck.finalize(); } catch (e) { /* already gone */ }
    });
    $('compare-maps').textContent = '';
    $('compare-view').hidden = true;
    window.consoleCompare = null;
    state.compare = null;
  }

  function setupCompare() {
    window.consoleCompare = null;
    $('compare-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var a = $('compare-a').value, b = $('compare-b').value;
      if (!a || !b || a === b) { showMessage('Compare: choose two different runs.'); return; }
      openCompare(a, b).then(function () { showMessage('Comparing run ' + a + ' (A) with run ' + b + ' (B).', true); })
        .catch(function (err) { showMessage('Compare: ' + err.message); });
    });
    $('compare-close').addEventListener('click', closeCompare);
  }

  // One input per property of the selected run kind's JSON schema (GET /api/info -> kinds):
  // numbers with their bounds, enums as a select, a list named "districts" as the city's districts,
  // a field marked "twin_run" ({kind, field}) as a choice of the finished runs of that kind.
  function fieldType(prop) {
    if (prop.anyOf) {
      for (var i = 0; i < prop.anyOf.length; i++) if (prop.anyOf[i].type !== 'null') return prop.anyOf[i];
    }
    return prop;
  }

  function buildFields(kind, info) {
    var box = $('run-fields');
    box.textContent = '';
    var props = (kind.schema && kind.schema.properties) || {};
    Object.keys(props).forEach(function (name) {
      var prop = props[name], t = fieldType(prop), label = prop.description || prop.title || name;
      var input;
      if (t.type === 'array' && name === 'districts') {
        var fs = el('fieldset', null, box);
        fs.id = 'run-districts';
        el('legend', null, fs, label);
        (info.districts || []).forEach(function (d) {
          var lab = el('label', null, fs);
          var cb = el('input', null, lab);
          cb.type = 'checkbox';
          cb.value = d;
          lab.appendChild(document.createTextNode(' ' + d));
        });
        return;
      }
      var lab = el('label', null, box, label + ' ');
      if (prop.twin_run || t.twin_run) {  // the id of a finished run of a kind (e.g. a flood forecast)
        input = el('select', 'run-ref', lab);
        input.dataset.runKind = (prop.twin_run || t.twin_run).kind;
        input.id = 'run-' + name;
        input.dataset.field = name;
        input.dataset.type = 'integer';
        fillRunRefs();
        return;
      }
      if (prop.enum || t.enum) {
        input = el('select', null, lab);
        (prop.enum || t.enum).forEach(function (v) { var o = el('option', null, input, String(v)); o.value = v; });
      } else if (t.type === 'boolean') {
        input = el('input', null, lab);
        input.type = 'checkbox';
        input.checked = !!prop.default;
      } else {
        input = el('input', null, lab);
        if (t.type === 'number' || t.type === 'integer') {
          input.type = 'number';
          input.step = 'any';
          var lo = t.minimum !== undefined ? t.minimum : t.exclusiveMinimum;
          var hi = t.maximum !== undefined ? t.maximum : t.exclusiveMaximum;
          if (lo !== undefined) input.min = lo;
          if (hi !== undefined) input.max = hi;
        }
      }
      var dflt = prop.default !== undefined && prop.default !== null ? prop.default :
        (prop.examples ? prop.examples[0] : undefined);
      if (dflt !== undefined && input.type !== 'checkbox') input.value = dflt;
      input.id = 'run-' + name;
      input.dataset.field = name;
      input.dataset.type = t.type || 'string';
    });
  }

  // The choices of the run-reference fields: the finished runs of their kind, newest first.
  function fillRunRefs() {
    Array.prototype.forEach.call(document.querySelectorAll('#run-fields select.run-ref'), function (sel) {
      var keep = sel.value;
      var ids = doneRuns().filter(function (id) { return state.runs[id].kind === sel.dataset.runKind; });
      sel.textContent = '';
      if (!ids.length) { var o = el('option', null, sel, 'no finished ' + sel.dataset.runKind + ' run'); o.value = ''; }
      ids.forEach(function (id) {
        var r = state.runs[id];
        var o = el('option', null, sel, '#' + id + ' ' + (r.forecast ? cycleLabel(r.forecast) : (r.description || r.kind)));
        o.value = String(id);
      });
      if (keep && ids.indexOf(Number(keep)) >= 0) sel.value = keep;
    });
  }

  function formBody(kind) {
    var body = {kind: kind.name};
    Array.prototype.forEach.call($('run-fields').querySelectorAll('[data-field]'), function (input) {
      var v = input.type === 'checkbox' ? input.checked : input.value;
      if (v === '') return;  // left empty: the field's default (null for an optional number)
      if (input.dataset.type === 'number' || input.dataset.type === 'integer') v = Number(v);
      body[input.dataset.field] = v;
    });
    var fs = $('run-districts');
    if (fs) {
      var districts = Array.prototype.slice.call(fs.querySelectorAll('input:checked'))
        .map(function (c) { return c.value; });
      if (districts.length) body.districts = districts;
    }
    return body;
  }

  function setupRunForm(info) {
    var kinds = info.kinds || [];
    var sel = $('run-kind');
    sel.textContent = '';
    kinds.forEach(function (k) { var o = el('option', null, sel, k.title); o.value = k.name; });
    function current() { return kinds.filter(function (k) { return k.name === sel.value; })[0]; }
    if (kinds.length) buildFields(kinds[0], info);
    sel.addEventListener('change', function () { if (current()) buildFields(current(), info); });
    $('run-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var kind = current();
      if (!kind) return;
      $('run-start').disabled = true;
      act('api/runs', formBody(kind)).then(function (res) {
        if (res.status === 202) {
          putRun(res.body);
          renderRuns();
          showMessage(kind.title + ' run ' + res.body.id + ' started.', true);
        } else {
          $('run-start').disabled = false;
          showMessage(kind.title + ' run: ' + refusal(res));
        }
      }).catch(function (err) { $('run-start').disabled = false; showMessage(kind.title + ' run: ' + err.message); });
    });
  }

  // A run's status only moves forward (running -> done, failed or cancelled). A reply or message read
  // before the run ended can reach the page after the feed's message that it ended (a cancel's 202,
  // computed when the cancel was asked, overtaken by the feed's 'cancelled' on a loaded machine): it
  // must not bring the run back to 'running', where nothing would ever correct it.
  function putRun(r) {
    var prev = state.runs[r.id];
    if (prev && prev.status !== 'running' && r.status === 'running') return false;
    state.runs[r.id] = r;
    return true;
  }

  function setRun(r) {
    var prev = state.runs[r.id];
    if (!putRun(r)) return;
    renderRuns();
    if (r.status === 'done' && (!prev || prev.status !== 'done')) {
      loadForecast(r.id);
      openRunEvents(r.id, null, true).catch(function () { return null; });
    }
    if (r.status === 'cancelled' && (!prev || prev.status !== 'cancelled')) {
      showMessage('Run ' + r.id + ' was cancelled.', true);
    }
  }

  // ------------------------------------------------------------------ live feed
  function cursor() { return (state.epoch ? state.epoch + '.' : '') + state.seq; }

  // Adopt a cursor '<epoch>.<seq>' from the server; a new epoch (server restarted) resets seq.
  function adopt(c) {
    var k = String(c).lastIndexOf('.');
    var epoch = k >= 0 ? String(c).slice(0, k) : '', seq = Number(String(c).slice(k + 1));
    if (epoch !== state.epoch) { state.epoch = epoch; state.seq = seq; } else state.seq = Math.max(state.seq, seq);
  }

  function handle(m) {
    if (m.epoch && state.epoch && m.epoch !== state.epoch) {  // another server instance
      adopt(m.epoch + '.' + m.seq);
      reloadLists();
      return;
    }
    if (m.seq) state.seq = Math.max(state.seq, m.seq);
    if (m.type === 'sensor') {
      state.sensors[m.sensor.id] = m.sensor;
      state.received.push({id: m.sensor.id, value: m.sensor.value, sent: m.sent, at: Date.now() / 1000});
      if (state.received.length > 200) state.received.shift();
      renderSensors();
      redrawLive();
    } else if (m.type === 'alert') {
      state.alerts[m.alert.id] = m.alert;
      renderAlert(m.alert);
      updateCounts();
      redrawLive();
    } else if (m.type === 'incident') {
      state.incidents[m.incident.id] = m.incident;
      renderIncident(m.incident);
      updateIncidentCount();
      redrawLive();
    } else if (m.type === 'run') {
      setRun(m.run);
    } else if (m.type === 'sensors' || m.type === 'resync') {
      reloadLists();
    }
  }

  function reloadLists() {
    return Promise.all([
      getJSON('api/sensors').then(function (b) { setSensors(b.sensors); adopt(b.cursor); }),
      getJSON('api/alerts').then(function (b) { setAlerts(b.alerts); }),
      getJSON('api/incidents').then(function (b) { setIncidents(b.incidents); }),
      getJSON('api/runs').then(function (b) { b.runs.forEach(putRun); renderRuns(); })
    ]);
  }

  function setConn(kind, text) {
    var c = $('conn');
    c.className = 'conn conn-' + kind;
    c.textContent = text;
  }

  var pollTimer = null;
  function startPolling() {
    if (pollTimer) return;
    state.transport = 'poll';
    setConn('poll', 'polling');
    function tick() {
      getJSON('api/changes?since=' + encodeURIComponent(cursor())).then(function (b) {
        if (b.resync) { state.epoch = ''; adopt(b.cursor); reloadLists(); } else b.messages.forEach(handle);
        adopt(b.cursor);
        setConn('poll', 'polling');
      }).catch(function () { setConn('off', 'disconnected'); })
        .then(function () { pollTimer = setTimeout(tick, POLL_MS); });
    }
    tick();
  }

  function startStream() {
    if (!window.EventSource || /[?&]poll=1/.test(location.search)) { startPolling(); return; }
    var failures = 0;
    var es = new EventSource('api/stream?since=' + encodeURIComponent(cursor()));
    state.transport = 'sse';
    es.addEventListener('hello', function () { failures = 0; setConn('live', 'live'); });
    es.onmessage = function (ev) {
      failures = 0;
      setConn('live', 'live');
      try { handle(JSON.parse(ev.data)); } catch (e) { console.error('console: bad message', e); }
    };
    es.onerror = function () {
      failures += 1;
      setConn('off', 'reconnecting…');
      if (failures >= 3 || es.readyState === EventSource.CLOSED) {
        es.close();
        startPolling();
      }
    };
  }

  // ------------------------------------------------------------------ start
  function start() {
    setupToken();
    updateBanner();
    getJSON('api/info').then(function (info) {
      state.info = info;
      STATUS = info.statuses;
      if (info.time_zone && typeof info.time_zone.offset_min === 'number') ZONE = info.time_zone;
      document.title = info.title;
      $('title').textContent = info.title;
      updateBanner();
      setupRunForm(info);
      setupEvacuate(info);
      setupCompare();
      setupRunDetail();
      setupForecastNav();
      return reloadLists();
    }).then(function () {
      startStream();
      return Promise.all([getJSON('api/scene/base').catch(function (e) {
        showMessage('Basemap unavailable: ' + e.message);
        return null;
      }), getJSON('api/scene/forecast').then(function (fc) {
        // no forecast cycle issued: show the newest finished (what-if) run, labelled as such
        var ids = doneRuns();
        return fc.run || !ids.length ? fc : getJSON('api/scene/forecast?run=' + ids[0]);
      }).then(titleCycle).catch(function () { return null; })]);
    }).then(function (scenes) {
      state.base = scenes[0];
      state.forecast = scenes[1];
      state.forecastRun = scenes[1] ? scenes[1].run : null;
      renderRuns();  // mark the run on the map
      if (state.forecastRun) openRunEvents(state.forecastRun, null, true).catch(function () { return null; });
      var scene = composeScene();
      // the city; a run without a grid (a building, a street's agents) would be a dot there: its own view
      var fc0 = state.forecast;
      scene.view = (fc0 && fc0.gridded === false && fc0.view) || fitView(state.base && state.base.bounds) ||
        scene.view || {longitude: 114.06, latitude: 22.6, zoom: 9.5};
      map = window.consoleMap = TwinMap.mount($('map'), scene, {onViewState: syncLiveView});
      mountLive(map);
      redrawLive();
      return new Promise(function (resolve) {  // the map's first frame (TwinMap's map.ready)
        (function wait() { if (map.ready) resolve(); else requestAnimationFrame(wait); })();
      });
    }).then(function () {
      window.consoleReady = true;
    }).catch(function (err) {
      state.errors.push(String(err && err.message || err));
      console.error('console start failed:', err);
      showMessage('The console could not start: ' + (err && err.message || err));
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
