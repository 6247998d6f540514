/* TwinMap: the twin's map on top of the deck.gl bundle that pydeck ships.
 *
 * Needs the global `deck` namespace of that bundle (deck.Deck, deck.JSONConverter,
 * layer classes).  No build step, no network.  Public API:
 *
 *   var map = TwinMap.mount(container, scene, opts)
 *     map.setScene(scene) -> Promise (drawn)     map.setFrame(i) -> Promise (drawn)
 *     map.frame, map.frameCount, map.drawCount   map.setLayerVisible(id, bool)
 *     map.setView(viewState)                     map.ready (first frame drew)
 *     map.valuesAt(lon, lat) -> [{layer, name, text, value}] of the shown rasters there
 *     map.pointsOf(layerId) -> [[lon, lat, group code], ...] of a movers layer at this frame
 *   var cmp = TwinMap.compare(container, sceneA, sceneB, diffScene, opts)
 *     cmp.a, cmp.b (maps), cmp.showDiff(bool) -> Promise, cmp.diffShown
 *   window.twinReady === true once every mounted map drew its first frame.
 *   TwinMap.scaleBar(lat, zoom, maxPx) -> {metres, px, text}; TwinMap.metresPerPixel(lat, zoom).
 *
 * A scene is {title, view, layers: [deck.gl layer JSON], legends, toggles, timeline, fonts};
 * timeline.frames[layerId][i] is a patch of that layer's props for frame i and
 * timeline.initial the frame the map opens on.  fonts: [{family, url}] are
 * registered (FontFace) and loaded before any layer draws, so text layers'
 * glyph atlases hold real glyphs.  A layer with a `twinValues` prop (see
 * viz/layers/_raster.py value_grid) shows its value under the cursor.
 * A layer with a `twinMinZoom` prop is drawn only from that zoom on (street names).
 * Text layers with a `twinDeclutter` prop (a priority number) thin with zoom: at each quarter
 * zoom step their labels are placed greedily, higher priority layers first and, within a layer,
 * in row order; a label whose box would overlap one already placed is left out until the user
 * zooms in far enough to part them (deck.gl's CollisionFilterExtension is not in the bundle).
 * A frame patch's `data` may be coded (moving points, rows picked from a layer's `twinRows`):
 * see "coded layer data" below.
 * The map keeps a scale bar (.tm-scale) in step with the zoom.
 * opts: {onViewState(vs), onFrame(i), frameMs, controls (default true)}.
 */
(function (global) {
  'use strict';

  var CSS = [
    '.tm-root{position:relative;width:100%;height:100%;overflow:hidden;font:12px/1.35 sans-serif;background:#fff}',
    '.tm-canvas{position:absolute;inset:0}',
    '.tm-panel{position:absolute;z-index:2;background:rgba(255,255,255,.92);border-radius:4px;',
    'box-shadow:0 1px 4px rgba(0,0,0,.3);padding:6px 8px;color:#222}',
    '.tm-title{top:8px;left:8px;max-width:calc(100% - 230px);font-weight:bold;font-size:13px;',
    'white-space:nowrap;overflow:hidden;text-overflow:ellipsis}',
    '.tm-legend{bottom:8px;right:8px;width:220px}',
    '.tm-legend h4{margin:4px 0 2px;font-size:12px}',
    '.tm-bar{height:10px;border:1px solid #999;margin:0 8px}',
    '.tm-ticks{position:relative;height:14px;font-size:10px;margin:0 8px}',
    '.tm-ticks span{position:absolute;transform:translateX(-50%);white-space:nowrap}',
    '.tm-cats{display:grid;grid-template-columns:repeat(3,1fr);column-gap:4px}',
    '.tm-cats div{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}',
    '.tm-swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border:1px solid #666;vertical-align:middle}',
    '.tm-layers{top:8px;right:8px}',
    '.tm-layers label{display:block;white-space:nowrap}',
    '.tm-timeline{bottom:8px;left:8px;right:260px;display:flex;align-items:center;gap:8px}',
    '.tm-timeline input[type=range]{flex:1}',
    '.tm-timeline button{width:32px}',
    '.tm-compare{display:flex;flex-direction:column;width:100%;height:100%;font:12px sans-serif}',
    '.tm-panes{display:flex;flex:1;min-height:0}',
    '.tm-pane{position:relative;flex:1;height:100%;border-left:2px solid #333}',
    '.tm-pane:first-child{border-left:none}',
    '.tm-cmpbar{padding:4px 8px;background:#f3f3f3;border-bottom:1px solid #999}',
    '.tm-scale{position:absolute;z-index:2;left:8px;bottom:8px;font-size:11px;color:#222;pointer-events:none}',
    '.tm-scale.tm-above{bottom:54px}',
    '.tm-scale-bar{box-sizing:border-box;height:6px;border:1.5px solid #222;border-top:none;background:rgba(255,255,255,.7)}',
    '.tm-scale-text{text-shadow:0 0 3px #fff,0 0 3px #fff}'
  ].join('\n');

  var EARTH_CIRCUMFERENCE_M = 40075016.686;  // WGS 84 equator, the web-mercator sphere

  // Metres on the ground per CSS pixel at a latitude and zoom (deck.gl: the world is 512 * 2^zoom px wide).
  function metresPerPixel(lat, zoom) {
    return EARTH_CIRCUMFERENCE_M * Math.cos(lat * Math.PI / 180) / (512 * Math.pow(2, zoom));
  }

  // The longest 1, 2 or 5 x 10^n metres not wider than maxPx: {metres, px, text}.
  function scaleBar(lat, zoom, maxPx) {
    var mpp = metresPerPixel(lat, zoom), target = mpp * maxPx;
    var p = Math.pow(10, Math.floor(Math.log10(target))), nice = p;
    [2, 5, 10].forEach(function (k) { if (k * p <= target) nice = k * p; });
    var text = nice >= 1000 ? (nice / 1000) + ' km' : nice + ' m';
    return {metres: nice, px: nice / mpp, text: text};
  }

  function mercY(lat) {
    var r = Math.max(Math.min(lat, 85), -85) * Math.PI / 180;
    return Math.log(Math.tan(Math.PI / 4 + r / 2));
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }

  // ---------------------------------------------------------- raster values (twinValues)

  var valueCodes = new WeakMap();  // twinValues object -> Promise of its Uint16Array codes

  function decodeValues(tv) {
    if (!tv || typeof tv !== 'object' || !tv.data) return null;
    var p = valueCodes.get(tv);
    if (p) return p;
    var bin = atob(tv.data), bytes = new Uint8Array(bin.length);
    for (var k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    p = new Response(stream).arrayBuffer().then(function (buf) {
      tv._codes = new Uint16Array(buf);
      return tv._codes;
    });
    valueCodes.set(tv, p);
    return p;
  }

  function valueDecimals(scale) {
    return Math.max(0, Math.min(3, Math.ceil(-Math.log10(scale) - 1e-9)));
  }

  // What a raster layer holds at lon/lat: null outside its bounds, else {name, text, value}.
  function rasterValue(layer, lon, lat) {
    var tv = layer.props.twinValues, b = layer.props.bounds;
    if (!tv || !tv._codes || !b || b.length !== 4) return null;
    if (!(lon >= b[0] && lon <= b[2] && lat >= b[1] && lat <= b[3])) return null;
    var u = (lon - b[0]) / (b[2] - b[0]);
    var v = (mercY(b[3]) - mercY(lat)) / (mercY(b[3]) - mercY(b[1]));
    var col = Math.min(tv.w - 1, Math.max(0, Math.floor(u * tv.w)));
    var row = Math.min(tv.h - 1, Math.max(0, Math.floor(v * tv.h)));
    var code = tv._codes[row * tv.w + col], text, value = null;
    if (code === 65535) text = tv.nodataText || 'no data';
    else if (code === 65534) {
      text = (tv.belowText || 'below') + ' (< ' + tv.below + (tv.units ? ' ' + tv.units : '') + ')';
    } else {
      value = tv.offset + tv.scale * code;
      text = value.toFixed(valueDecimals(tv.scale)) + (tv.units ? ' ' + tv.units : '');
    }
    return {name: tv.name || layer.id, text: text, value: value, row: row, col: col};
  }

  // ---------------------------------------------------------- coded layer data (frame patches)
  //
  // A frame patch's `data` may be coded instead of rows:
  //  {twinPoints: {n, x0, y0, xy, g, gb}}: points (viz/layers/movers.py encode_points): xy is
  //    base64 of zlib of 2n int32 micro-degrees from x0 (every point), then from y0, as 4 byte
  //    planes (byte 0 of every value, then byte 1 ...); g base64 of zlib of each point's
  //    index (uint8, or uint16 when gb is 2; "" = all 0) in the layer's `twinGroups`
  //    [{code, label, c, tooltip}]; they become binary data {length, attributes: {getPosition
  //    (float64 lon, lat), getFillColor (unorm8 RGBA)}, twinGroup (group index of each point)}.
  //  {twinRows: [i, ...] or byte_planes text, set: {key: [value per row]}}: rows i of the layer's `twinRows` prop,
  //    each with the keys of `set` (optional) replaced; a row with `pi` gets path = the layer's
  //    twinPaths[pi] (viz/layers/road_status.py: one geometry per road, one row per look).

  function unzipBase64(text) {
    var bin = atob(text), bytes = new Uint8Array(bin.length);
    for (var k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Response(stream).arrayBuffer();
  }

  // The int32 values of viz/layers/movers.py byte_planes: 4 planes (byte 0 of every value, then byte 1 ...).
  function planesInt32(buf) {
    var b = new Uint8Array(buf), n = b.length >> 2, out = new Int32Array(n);
    for (var k = 0; k < n; k++) out[k] = b[k] | b[n + k] << 8 | b[2 * n + k] << 16 | b[3 * n + k] << 24;
    return out;
  }

  // Binary deck.gl data: positions (float64) and colours (unorm8) as attributes, no row objects
  // (a 50 k-point frame switches ~5x faster). twinGroup[k] is point k's group index (tooltips).
  function decodePoints(p, groups) {
    return Promise.all([unzipBase64(p.xy), p.g ? unzipBase64(p.g) : null]).then(function (bufs) {
      var xy = planesInt32(bufs[0]), n = p.n;  // n x offsets, then n y offsets
      var g = bufs[1] ? (p.gb === 2 ? new Uint16Array(bufs[1]) : new Uint8Array(bufs[1])) : new Uint8Array(n);
      var pos = new Float64Array(2 * n), col = new Uint8Array(4 * n);
      var cols = groups.map(function (grp) { return grp.c || [0, 0, 0, 255]; });
      for (var k = 0; k < n; k++) {
        pos[2 * k] = (p.x0 + xy[k]) / 1e6;
        pos[2 * k + 1] = (p.y0 + xy[n + k]) / 1e6;
        var c = cols[g[k]] || [0, 0, 0, 255];
        col[4 * k] = c[0]; col[4 * k + 1] = c[1]; col[4 * k + 2] = c[2]; col[4 * k + 3] = c[3];
      }
      return {length: n, twinGroup: g, attributes: {
        getPosition: {value: pos, size: 2}, getFillColor: {value: col, size: 4, normalized: true}}};
    });
  }

  // The tooltip of point `index` of binary points data (its group's), or null.
  function pointTooltip(layer, index) {
    var d = layer && layer.props.data, groups = layer && layer.props.twinGroups;
    if (!groups || !d || !d.twinGroup || !(index >= 0 && index < d.length)) return null;
    var grp = groups[d.twinGroup[index]];
    return grp && grp.tooltip ? grp.tooltip : null;
  }

  function pickRows(spec, rows, store, paths) {
    var set = spec.set || {}, keys = Object.keys(set);
    return Array.prototype.map.call(rows, function (r, k) {
      var o = Object.assign({}, store[r]);
      if (paths && typeof o.pi === 'number') o.path = paths[o.pi];
      keys.forEach(function (key) { o[key] = set[key][k]; });
      return o;
    });
  }

  function isCoded(v) {
    return !!v && typeof v === 'object' && !Array.isArray(v) &&
      (!!v.twinPoints || Array.isArray(v.twinRows) || typeof v.twinRows === 'string');
  }

  // Promise of the rows of coded data for a layer (its props give twinGroups / twinRows).
  function decodeData(v, layer) {
    if (v.twinPoints) return decodePoints(v.twinPoints, layer.props.twinGroups || []);
    var rows = typeof v.twinRows === 'string' ? unzipBase64(v.twinRows).then(planesInt32)
      : Promise.resolve(v.twinRows);
    return rows.then(function (r) { return pickRows(v, r, layer.props.twinRows || [], layer.props.twinPaths); });
  }

  // ---------------------------------------------------------- fonts

  var fontLoads = {};  // family -> Promise

  function loadFonts(fonts) {
    if (!fonts || !fonts.length) return Promise.resolve();
    if (typeof FontFace === 'undefined' || !document.fonts) return Promise.resolve();
    return Promise.all(fonts.map(function (f) {
      if (!fontLoads[f.family]) {
        var face = new FontFace(f.family, 'url(' + f.url + ')');
        document.fonts.add(face);
        fontLoads[f.family] = face.load().then(function () {
          return document.fonts.load('16px "' + f.family + '"');
        }).catch(function (err) {
          console.error('TwinMap: label font ' + f.family + ' did not load:', err && err.message || err);
        });
      }
      return fontLoads[f.family];
    }));
  }

  var converter = null;
  var maps = [];

  function injectStyle() {
    if (document.getElementById('twinmap-style')) return;
    var s = document.createElement('style');
    s.id = 'twinmap-style';
    s.textContent = CSS;
    document.head.appendChild(s);
  }

  function getConverter() {
    if (converter) return converter;
    var D = global.deck;
    if (!D || !D.Deck || !D.JSONConverter) {
      throw new Error('TwinMap: the deck.gl bundle (global "deck") is not loaded');
    }
    var classes = {};
    Object.keys(D).forEach(function (k) {
      if (/^[A-Z]/.test(k) && typeof D[k] === 'function') classes[k] = D[k];
    });
    converter = new D.JSONConverter({
      configuration: {classes: classes, enumerations: {COORDINATE_SYSTEM: D.COORDINATE_SYSTEM}}
    });
    return converter;
  }

  function el(tag, cls, parent, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function rgba(c) {
    var a = c.length > 3 ? c[3] / 255 : 1;
    return 'rgba(' + c[0] + ',' + c[1] + ',' + c[2] + ',' + a + ')';
  }

  function fmt(v) {
    if (typeof v !== 'number') return String(v);
    var a = Math.abs(v);
    return a !== 0 && (a < 0.01 || a >= 1e5) ? v.toExponential(1) : String(+v.toFixed(2));
  }

  function updateReady() {
    global.twinReady = maps.length > 0 && maps.every(function (m) { return m.ready; });
  }

  var TIP_STYLE = {backgroundColor: 'rgba(30,30,30,.85)', color: '#fff', fontSize: '12px', padding: '6px'};

  function tooltip(info) {
    var o = info && info.object;
    var html = o && (o.tooltip || (o.properties && o.properties.tooltip));
    if (!html && info && info.layer && info.picked !== false) html = pointTooltip(info.layer, info.index);
    return html ? {html: html, style: TIP_STYLE} : null;
  }

  // ------------------------------------------------------------------ one map

  function TwinMapView(container, scene, opts) {
    if (typeof container === 'string') container = document.getElementById(container);
    if (!container) throw new Error('TwinMap.mount: container not found');
    injectStyle();
    this.opts = opts || {};
    this.root = el('div', 'tm-root', container);
    this.canvasBox = el('div', 'tm-canvas', this.root);
    this.drawCount = 0;
    this.ready = false;
    this.frame = 0;
    this.frameCount = 0;
    this.hidden = {};
    this._waiters = [];
    this._images = {};
    this._sceneSet = false;
    var v = scene.view || {longitude: 0, latitude: 0, zoom: 1};
    this.viewState = {longitude: v.longitude, latitude: v.latitude, zoom: v.zoom,
      pitch: v.pitch || 0, bearing: v.bearing || 0};
    var self = this;
    this.deck = new global.deck.Deck({
      parent: this.canvasBox,
      viewState: this.viewState,
      controller: true,
      layers: [],
      getTooltip: function (info) { return self._tooltip(info); },
      onViewStateChange: function (e) {
        self.setView(e.viewState);
        if (self.opts.onViewState) self.opts.onViewState(e.viewState);
      },
      onAfterRender: function () { self._afterRender(); },
      onError: function (err) { console.error('TwinMap deck.gl error:', err && err.message || err); }
    });
    maps.push(this);
    updateReady();
    this._scale = el('div', 'tm-scale', this.root);
    this._scaleBar = el('div', 'tm-scale-bar', this._scale);
    this._scaleText = el('div', 'tm-scale-text', this._scale);
    this._updateScale();
    this.setScene(scene);
  }

  // Vector object tooltip, then the value of every shown raster under the cursor (top layer first).
  TwinMapView.prototype._tooltip = function (info) {
    var base = tooltip(info), lines = [];
    var c = info && info.coordinate;
    if (c) {
      var layers = (this.deck.props.layers || []).slice().reverse();
      layers.forEach(function (layer) {
        if (!layer || layer.props.visible === false || !layer.props.twinValues) return;
        var r = rasterValue(layer, c[0], c[1]);
        if (r) lines.push('<b>' + escapeHtml(r.name) + '</b>: ' + escapeHtml(r.text));
      });
    }
    if (!base && !lines.length) return null;
    var html = (base ? base.html : '') + (base && lines.length ? '<br/>' : '') + lines.join('<br/>');
    return {html: html, style: TIP_STYLE};
  };

  // Values under a lon/lat of every shown raster layer: [{layer, name, text, value, row, col}], top first.
  TwinMapView.prototype.valuesAt = function (lon, lat) {
    var out = [];
    (this.deck.props.layers || []).slice().reverse().forEach(function (layer) {
      if (!layer || layer.props.visible === false || !layer.props.twinValues) return;
      var r = rasterValue(layer, lon, lat);
      if (r) { r.layer = layer.id; out.push(r); }
    });
    return out;
  };

  // Points of a movers layer at the current frame: [[lon, lat, group code], ...] (null for another layer).
  TwinMapView.prototype.pointsOf = function (id) {
    var layer = (this.deck.props.layers || []).filter(function (l) { return l && l.id === id; })[0];
    var d = layer && layer.props.data, groups = layer && layer.props.twinGroups;
    if (!d || !d.attributes || !d.twinGroup || !groups) return null;
    var pos = d.attributes.getPosition.value, out = [];
    for (var k = 0; k < d.length; k++) out.push([pos[2 * k], pos[2 * k + 1], groups[d.twinGroup[k]].code]);
    return out;
  };

  TwinMapView.prototype._updateScale = function () {
    if (!this._scale) return;
    var s = scaleBar(this.viewState.latitude, this.viewState.zoom, 110);
    this._scaleBar.style.width = s.px.toFixed(1) + 'px';
    this._scaleText.textContent = s.text;
    this._scale.dataset.metres = String(s.metres);
    this._scale.dataset.px = s.px.toFixed(3);
    this._scale.classList.toggle('tm-above', !!this._slider);
  };

  TwinMapView.prototype._allLoaded = function () {
    try {
      var lm = this.deck.layerManager;
      if (!this.deck.isInitialized || !lm || lm.needsUpdate()) return false;
      return lm.getLayers().every(function (l) { return l.isLoaded; });
    } catch (e) {
      return false;
    }
  };

  TwinMapView.prototype._afterRender = function () {
    this.drawCount += 1;
    if (!this._layersSet || !this._allLoaded()) return;  // not before the scene's layers (decoded frames)
    if (!this.ready) {
      this.ready = true;
      updateReady();
    }
  };

  // A promise resolved once a frame drew after this call with every layer loaded
  // (or, when nothing needed redrawing, once the layers are loaded).
  TwinMapView.prototype._drawn = function () {
    var self = this, start = this.drawCount, idle = 0;
    return new Promise(function (resolve) {
      function check() {
        if (self._allLoaded()) {
          if (self.drawCount > start || ++idle > 10) return resolve(self.drawCount);
        }
        requestAnimationFrame(check);
      }
      requestAnimationFrame(check);
    });
  };

  TwinMapView.prototype.setView = function (vs) {
    this.viewState = {longitude: vs.longitude, latitude: vs.latitude, zoom: vs.zoom,
      pitch: vs.pitch || 0, bearing: vs.bearing || 0};
    this.deck.setProps({viewState: this.viewState});
    this._updateScale();
    if (this._order && this._zoomKey() !== this._lastZoomKey) this.deck.setProps({layers: this._layers()});
  };

  TwinMapView.prototype._zoomShows = function (layer) {
    var z = layer.props.twinMinZoom;
    return !(typeof z === 'number' && this.viewState.zoom < z);
  };

  // Which zoom-limited layers the current zoom shows, and the decluttering's zoom step (layers are
  // rebuilt when it changes).
  TwinMapView.prototype._zoomKey = function () {
    var self = this, declutter = false;
    return this._order.map(function (id) {
      if (typeof self._base[id].props.twinDeclutter === 'number') declutter = true;
      return self._zoomShows(self._base[id]) ? 1 : 0;
    }).join('') + (declutter ? '|' + declutterZoom(this.viewState.zoom) : '');
  };

  // ------------------------------------------------------------------ label decluttering
  function declutterZoom(z) { return Math.round(z * 4) / 4; }
  // Web Mercator world pixels at zoom 0 (deck.gl's 512-pixel world).
  function mercX(lon) { return (lon + 180) / 360 * 512; }
  function mercY(lat) {
    var phi = Math.max(-85.05, Math.min(85.05, lat)) * Math.PI / 180;
    return (1 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / Math.PI) / 2 * 512;
  }
  // Estimated width (px) of a line of text at `size` px: CJK glyphs are square, Latin ~0.6 em.
  function textWidth(line, size) {
    var w = 0;
    for (var i = 0; i < line.length; i++) w += line.charCodeAt(i) >= 0x2e80 ? size : 0.6 * size;
    return w;
  }
  function accessor(v, row, fallback) {
    if (typeof v === 'function') return v(row, {data: null, index: 0, target: []});
    return v === undefined ? fallback : v;
  }

  // The box (world pixels at this zoom) each label of a text layer takes: [x0, y0, x1, y1] or null.
  function labelBoxes(layer, scale) {
    var p = layer.props, rows = Array.isArray(p.data) ? p.data : [];
    var off = Array.isArray(p.getPixelOffset) ? p.getPixelOffset : [0, 0];
    var pad = Array.isArray(p.backgroundPadding) ? p.backgroundPadding : [0, 0, 0, 0];
    return rows.map(function (row) {
      var pos = accessor(p.getPosition, row, null), text = String(accessor(p.getText, row, '') || '');
      if (!pos || !text) return null;
      var size = Number(accessor(p.getSize, row, 12)) || 12;
      var lines = text.split('\n'), w = 0;
      lines.forEach(function (ln) { w = Math.max(w, textWidth(ln, size)); });
      var h = lines.length * size * 1.2;
      var anchor = accessor(p.getTextAnchor, row, 'middle');
      var x = mercX(pos[0]) * scale + off[0], y = mercY(pos[1]) * scale + off[1];
      var x0 = anchor === 'start' ? x : anchor === 'end' ? x - w : x - w / 2;
      return [x0 - pad[0] - 2, y - h / 2 - pad[1] - 2, x0 + w + pad[2] + 2, y + h / 2 + pad[3] + 2];
    });
  }

  // The rows each shown `twinDeclutter` layer keeps at the current zoom step: {layerId: rows}.
  // Cached per zoom step and set of shown layers, so frames and pans reuse the same arrays.
  TwinMapView.prototype._declutter = function () {
    var self = this, z = declutterZoom(this.viewState.zoom);
    var ids = this._order.filter(function (id) {
      var l = self._base[id];
      return typeof l.props.twinDeclutter === 'number' && !self.hidden[id] && l.props.visible !== false &&
        self._zoomShows(l);
    });
    var key = z + '|' + ids.join(',');
    if (this._declutterKey === key) return this._declutterKept;
    var ranked = ids.map(function (id, k) { return {id: id, k: k, pr: self._base[id].props.twinDeclutter}; })
      .sort(function (a, b) { return (b.pr - a.pr) || (a.k - b.k); });
    var scale = Math.pow(2, z), CELL = 256, grid = {}, kept = {};
    function cells(b, visit) {
      for (var gx = Math.floor(b[0] / CELL); gx <= Math.floor(b[2] / CELL); gx++) {
        for (var gy = Math.floor(b[1] / CELL); gy <= Math.floor(b[3] / CELL); gy++) {
          if (visit(gx + ',' + gy) === false) return false;
        }
      }
      return true;
    }
    ranked.forEach(function (r) {
      var layer = self._base[r.id], rows = layer.props.data, boxes = labelBoxes(layer, scale);
      kept[r.id] = rows.filter(function (row, i) {
        var b = boxes[i];
        if (!b) return false;
        var free = cells(b, function (c) {
          return !(grid[c] || []).some(function (o) { return b[0] < o[2] && o[0] < b[2] && b[1] < o[3] && o[1] < b[3]; });
        });
        if (free) cells(b, function (c) { (grid[c] = grid[c] || []).push(b); });
        return free;
      });
    });
    this._declutterKey = key;
    this._declutterKept = kept;
    return kept;
  };

  TwinMapView.prototype.setScene = function (scene) {
    var conv = getConverter();
    this.scene = scene;
    this._base = {};
    this._declutterKey = null;
    this._order = [];
    this._patches = {};
    this._images = {};
    var self = this;
    (scene.layers || []).forEach(function (json) {
      var layer = conv.convert(json);
      if (!layer) throw new Error('TwinMap: cannot build layer ' + JSON.stringify(json).slice(0, 120));
      self._base[layer.id] = layer;
      self._order.push(layer.id);
    });
    var tl = scene.timeline;
    this.frameCount = tl && tl.times_s ? tl.times_s.length : 0;
    var initial = tl && tl.initial >= 0 && tl.initial < this.frameCount ? tl.initial : 0;
    if (!this._sceneSet || !(this.frame < this.frameCount)) this.frame = initial;
    this._sceneSet = true;
    this._fonts = loadFonts(scene.fonts);
    this._baseValues = Promise.all(this._order.map(function (id) {
      return decodeValues(self._base[id].props.twinValues);
    }));
    this._buildControls();
    return this.setFrame(this.frame, {silent: true});
  };

  // Converted patch of one layer at frame i; data-URL images become decoded <img>.
  TwinMapView.prototype._patch = function (id, i) {
    var tl = this.scene.timeline;
    var list = tl && tl.frames && tl.frames[id];
    if (!list || !list[i]) return null;
    var key = id + '#' + i;
    if (!this._patches[key]) {
      var raw = list[i], plain = {}, images = {}, coded = null;
      Object.keys(raw).forEach(function (k) {
        var v = raw[k];
        if (typeof v === 'string' && v.indexOf('data:image/') === 0) images[k] = v;
        else if (k === 'data' && isCoded(v)) coded = v;
        else plain[k] = v;
      });
      var conv = getConverter().convert(plain) || {};
      var waits = [decodeValues(conv.twinValues)];
      if (coded) {
        waits.push(decodeData(coded, this._base[id]).then(function (rows) { conv.data = rows; }));
      }
      Object.keys(images).forEach(function (k) {
        var img = new Image();
        img.src = images[k];
        conv[k] = img;
        waits.push(img.decode());
      });
      this._patches[key] = {props: conv, decoded: Promise.all(waits)};
    }
    return this._patches[key];
  };

  TwinMapView.prototype._layers = function () {
    var self = this;
    this._lastZoomKey = this._zoomKey();
    var kept = this._declutter();
    return this._order.map(function (id) {
      var layer = self._base[id];
      var p = self.frameCount ? self._patch(id, self.frame) : null;
      var props = p ? Object.assign({}, p.props) : {};
      props.visible = !self.hidden[id] && (layer.props.visible !== false) && self._zoomShows(layer);
      if (kept[id] && !('data' in props)) props.data = kept[id];
      return layer.clone(props);
    });
  };

  TwinMapView.prototype.setFrame = function (i, how) {
    i = Number(i);
    if (this.frameCount && !(i >= 0 && i < this.frameCount && Math.floor(i) === i)) {
      return Promise.reject(new Error('TwinMap.setFrame: frame ' + i + ' is outside 0..' + (this.frameCount - 1)));
    }
    if (!this.frameCount) i = 0;
    var self = this;
    var waits = this._order.map(function (id) {
      var p = self.frameCount ? self._patch(id, i) : null;
      return p ? p.decoded : null;
    });
    waits.push(this._fonts, this._baseValues);
    return Promise.all(waits).then(function () {
      self.frame = i;
      self._layersSet = true;
      self.deck.setProps({layers: self._layers()});
      self._syncControls();
      if (self.frameCount && i + 1 < self.frameCount) {
        self._order.forEach(function (id) { self._patch(id, i + 1); });
      }
      if (self.opts.onFrame && !(how && how.silent)) self.opts.onFrame(i);
      return self._drawn();
    }).then(function () { return self.frame; });
  };

  TwinMapView.prototype.setLayerVisible = function (id, visible) {
    if (!(id in this._base)) throw new Error('TwinMap.setLayerVisible: no layer "' + id + '"');
    this.hidden[id] = !visible;
    this.deck.setProps({layers: this._layers()});
    this._syncControls();
    return this._drawn();
  };

  TwinMapView.prototype.frameTime = function (i) {
    var tl = this.scene.timeline;
    return tl ? tl.times_s[i === undefined ? this.frame : i] : null;
  };

  // ------------------------------------------------------------------ controls

  TwinMapView.prototype._buildControls = function () {
    var self = this, scene = this.scene;
    (this._panels || []).forEach(function (p) { p.remove(); });
    this._panels = [];
    this._slider = this._label = this._play = null;
    this._checks = {};
    this._legendItems = [];
    this._legendBox = null;
    if (this.opts.controls === false) return;
    if (scene.title) this._panels.push(el('div', 'tm-panel tm-title', this.root, scene.title));

    var legends = scene.legends || [];
    if (legends.length) {
      var lg = this._legendBox = el('div', 'tm-panel tm-legend', this.root);
      this._panels.push(lg);
      legends.forEach(function (L) { self._legend(lg, L); });
    }

    var toggles = scene.toggles || [];
    if (toggles.length) {
      var box = el('div', 'tm-panel tm-layers', this.root);
      this._panels.push(box);
      toggles.forEach(function (t) {
        var label = el('label', null, box);
        var cb = el('input', null, label);
        cb.type = 'checkbox';
        cb.dataset.layers = t.layers.join(',');
        label.appendChild(document.createTextNode(' ' + t.label));
        cb.addEventListener('change', function () {
          t.layers.forEach(function (id) { if (id in self._base) self.hidden[id] = !cb.checked; });
          self.deck.setProps({layers: self._layers()});
          self._syncControls();
        });
        t.layers.forEach(function (id) { self._checks[id] = cb; });
        if (t.visible === false) t.layers.forEach(function (id) { self.hidden[id] = true; });
      });
    }

    if (this.frameCount > 0) {
      var bar = el('div', 'tm-panel tm-timeline', this.root);
      this._panels.push(bar);
      this._play = el('button', 'tm-play', bar, '\u25B6');
      this._play.title = 'play / pause';
      this._slider = el('input', 'tm-slider', bar);
      this._slider.type = 'range';
      this._slider.min = 0;
      this._slider.max = this.frameCount - 1;
      this._slider.step = 1;
      this._label = el('span', 'tm-label', bar);
      this._slider.addEventListener('input', function () { self.setFrame(Number(self._slider.value)); });
      this._play.addEventListener('click', function () { self.togglePlay(); });
    }
    this._updateScale();
    this._syncControls();
  };

  TwinMapView.prototype._legend = function (box, L) {
    var parent = el('div', 'tm-legend-item', box);
    parent.dataset.layer = L.layer;
    parent.dataset.layers = (L.layers && L.layers.length ? L.layers : [L.layer]).join(',');
    this._legendItems.push(parent);
    el('h4', null, parent, L.title + (L.units ? ' (' + L.units + ')' : ''));
    var stops = L.stops || [];
    var numeric = stops.length > 1 && stops.every(function (s) { return typeof s[0] === 'number'; });
    if (!numeric) {
      var cats = stops.length > 6 ? el('div', 'tm-cats', parent) : parent;
      stops.forEach(function (s) {
        var row = el('div', null, cats);
        el('span', 'tm-swatch', row).style.background = rgba(s[1]);
        row.appendChild(document.createTextNode(String(s[0])));
      });
      return;
    }
    // Stops are evenly spaced: ramps interpolate between neighbouring stops, not linearly in value.
    var last = stops.length - 1;
    var grad = stops.map(function (s, k) { return rgba(s[1]) + ' ' + (100 * k / last).toFixed(1) + '%'; });
    el('div', 'tm-bar', parent).style.background = 'linear-gradient(to right,' + grad.join(',') + ')';
    var ticks = el('div', 'tm-ticks', parent);
    var m = Math.min(stops.length, 6), show = {};  // at most 6 labels fit, evenly picked
    for (var j = 0; j < m; j++) show[Math.round(j * last / (m - 1))] = true;
    stops.forEach(function (s, k) {
      if (show[k]) el('span', null, ticks, fmt(s[0])).style.left = (100 * k / last) + '%';
    });
  };

  TwinMapView.prototype._syncControls = function () {
    var self = this;
    Object.keys(this._checks || {}).forEach(function (id) { self._checks[id].checked = !self.hidden[id]; });
    (this._legendItems || []).forEach(function (item) {  // a legend shows while one of its layers does
      var shown = item.dataset.layers.split(',').some(function (id) {
        return (id in self._base) && !self.hidden[id] && self._base[id].props.visible !== false;
      });
      item.style.display = shown ? '' : 'none';
    });
    if (this._legendBox) {
      this._legendBox.style.display = this._legendItems.some(function (i) {
        return i.style.display !== 'none';
      }) ? '' : 'none';
    }
    if (!this._slider) return;
    this._slider.value = this.frame;
    var tl = this.scene.timeline;
    this._label.textContent = (tl.labels && tl.labels[this.frame]) || (tl.times_s[this.frame] + ' s');
  };

  TwinMapView.prototype.togglePlay = function () {
    var self = this;
    if (this._playing) {
      this._playing = false;
      if (this._play) this._play.textContent = '\u25B6';
      return;
    }
    if (!this.frameCount) return;
    this._playing = true;
    if (this._play) this._play.textContent = '\u275A\u275A';
    (function step() {
      if (!self._playing) return;
      var next = (self.frame + 1) % self.frameCount;
      self.setFrame(next).then(function () { setTimeout(step, self.opts.frameMs || 300); });
    })();
  };

  // ------------------------------------------------------------------ compare

  function nearestIndex(times, t) {
    var best = 0;
    for (var k = 1; k < times.length; k++) {
      if (Math.abs(times[k] - t) < Math.abs(times[best] - t)) best = k;
    }
    return best;
  }

  function Compare(container, sceneA, sceneB, diffScene, opts) {
    if (typeof container === 'string') container = document.getElementById(container);
    injectStyle();
    opts = opts || {};
    var self = this;
    this.sceneB = sceneB;
    this.diffScene = diffScene;
    this.diffShown = false;
    var wrap = el('div', 'tm-compare', container);
    var bar = diffScene ? el('label', 'tm-cmpbar', wrap) : null;
    var panes = el('div', 'tm-panes', wrap);
    var paneA = el('div', 'tm-pane', panes), paneB = el('div', 'tm-pane', panes);
    var linked = function (other) {
      return {
        frameMs: opts.frameMs,
        onViewState: function (vs) { self[other].setView(vs); },
        onFrame: function (i) {
          var me = other === 'b' ? self.a : self.b, them = self[other];
          if (!them.frameCount || !me.frameCount) return;
          them.setFrame(nearestIndex(them.scene.timeline.times_s, me.frameTime(i)), {silent: true});
        }
      };
    };
    this.a = new TwinMapView(paneA, sceneA, linked('b'));
    this.b = new TwinMapView(paneB, sceneB, linked('a'));
    this._syncB();
    if (bar) {
      this._diffBox = el('input', null, bar);
      this._diffBox.type = 'checkbox';
      bar.appendChild(document.createTextNode(' show difference (right pane)'));
      this._diffBox.addEventListener('change', function () { self.showDiff(self._diffBox.checked); });
    }
  }

  Compare.prototype.showDiff = function (on) {
    if (!this.diffScene) return Promise.reject(new Error('TwinMap.compare: no difference scene'));
    this.diffShown = !!on;
    if (this._diffBox) this._diffBox.checked = this.diffShown;
    var self = this;
    return this.b.setScene(this.diffShown ? this.diffScene : this.sceneB).then(function () {
      return self._syncB();
    });
  };

  // B shows the frame nearest A's time (each opens on its own initial frame otherwise).
  Compare.prototype._syncB = function () {
    var a = this.a, b = this.b;
    if (!a.frameCount || !b.frameCount) return Promise.resolve(b.frame);
    return b.setFrame(nearestIndex(b.scene.timeline.times_s, a.frameTime()), {silent: true});
  };

  global.TwinMap = {
    mount: function (container, scene, opts) { return new TwinMapView(container, scene, opts); },
    compare: function (container, a, b, diff, opts) { return new Compare(container, a, b, diff, opts); },
    maps: maps,
    scaleBar: scaleBar,
    metresPerPixel: metresPerPixel
  };
  global.twinReady = false;
})(typeof window !== 'undefined' ? window : this);
