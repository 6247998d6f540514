/* TwinMap: the twin's map on top of the deck.gl bundle that pydeck ships.
 *
 * Needs the global `deck` namespace of that bundle (deck.Deck, deck.JSONConverter,
 * layer classes).  No build step, no network.  Public API:
 *
 *   var map = TwinMap.mount(container, scene, opts)
 *     map.setScene(scene) -> Promise (drawn)     map.setFrame(i) -> Promise (drawn)
 *     map.frame, map.frameCount, map.drawCount   map.setLayerVisible(id, bool)
 *     map.setView(viewState)                     map.ready (first frame drew)
 *   var cmp = TwinMap.compare(container, sceneA, sceneB, diffScene, opts)
 *     cmp.a, cmp.b (maps), cmp.showDiff(bool) -> Promise, cmp.diffShown
 *   window.twinReady === true once every mounted map drew its first frame.
 *
 * A scene is {title, view, layers: [deck.gl layer JSON], legends, toggles, timeline};
 * timeline.frames[layerId][i] is a patch of that layer's props for frame i.
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
    '.tm-cmpbar{padding:4px 8px;background:#f3f3f3;border-bottom:1px solid #999}'
  ].join('\n');

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

  function tooltip(info) {
    var o = info && info.object;
    var html = o && (o.tooltip || (o.properties && o.properties.tooltip));
    return html ? {html: html, style: {backgroundColor: 'rgba(30,30,30,.85)', color: '#fff',
      fontSize: '12px', padding: '6px'}} : null;
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
    var v = scene.view || {longitude: 0, latitude: 0, zoom: 1};
    this.viewState = {longitude: v.longitude, latitude: v.latitude, zoom: v.zoom,
      pitch: v.pitch || 0, bearing: v.bearing || 0};
    var self = this;
    this.deck = new global.deck.Deck({
      parent: this.canvasBox,
      viewState: this.viewState,
      controller: true,
      layers: [],
      getTooltip: tooltip,
      onViewStateChange: function (e) {
        self.setView(e.viewState);
        if (self.opts.onViewState) self.opts.onViewState(e.viewState);
      },
      onAfterRender: function () { self._afterRender(); },
      onError: function (err) { console.error('TwinMap deck.gl error:', err && err.message || err); }
    });
    maps.push(this);
    updateReady();
    this.setScene(scene);
  }

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
    if (!this._allLoaded()) return;
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
  };

  TwinMapView.prototype.setScene = function (scene) {
    var conv = getConverter();
    this.scene = scene;
    this._base = {};
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
    if (this.frame >= this.frameCount) this.frame = 0;
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
      var raw = list[i], plain = {}, images = {};
      Object.keys(raw).forEach(function (k) {
        var v = raw[k];
        if (typeof v === 'string' && v.indexOf('data:image/') === 0) images[k] = v;
        else plain[k] = v;
      });
      var conv = getConverter().convert(plain) || {};
      var waits = [];
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
    return this._order.map(function (id) {
      var layer = self._base[id];
      var p = self.frameCount ? self._patch(id, self.frame) : null;
      var props = p ? Object.assign({}, p.props) : {};
      props.visible = !self.hidden[id] && (layer.props.visible !== false);
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
    return Promise.all(waits).then(function () {
      self.frame = i;
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
    this._syncControls();
  };

  TwinMapView.prototype._legend = function (box, L) {
    var parent = el('div', 'tm-legend-item', box);
    parent.dataset.layer = L.layer;
    this._legendItems.push(parent);
    el('h4', null, parent, L.title + (L.units ? ' (' + L.units + ')' : ''));
    var stops = L.stops || [];
    var numeric = stops.length > 1 && stops.every(function (s) { return typeof s[0] === 'number'; });
    if (!numeric) {
      stops.forEach(function (s) {
        var row = el('div', null, parent);
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
    (this._legendItems || []).forEach(function (item) {  // a legend shows while its layer does
      item.style.display = self.hidden[item.dataset.layer] ? 'none' : '';
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
    return this.b.setScene(this.diffShown ? this.diffScene : this.sceneB);
  };

  global.TwinMap = {
    mount: function (container, scene, opts) { return new TwinMapView(container, scene, opts); },
    compare: function (container, a, b, diff, opts) { return new Compare(container, a, b, diff, opts); },
    maps: maps
  };
  global.twinReady = false;
})(typeof window !== 'undefined' ? window : this);
