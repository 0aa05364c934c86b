// Maps on intake's pages, an enhancement only: without JavaScript (or without map
// tiles) the form takes the address or typed coordinates, and the reports page is a
// list. Leaflet (and leaflet.markercluster) are served from /static/vendor/.
(function () {
  "use strict";
  if (typeof L === "undefined") { return; }

  function baseMap(el) {
    var map = L.map(el, { scrollWheelZoom: false });
    L.tileLayer(el.dataset.tiles, {
      maxZoom: 19, attribution: el.dataset.attribution || ""
    }).addTo(map);
    var box = (el.dataset.bbox || "").split(",").map(Number);
    if (box.length === 4 && box.every(isFinite)) {
      map.fitBounds([[box[0], box[1]], [box[2], box[3]]]);
    } else {
      map.setView([-2.5, 118], 4);  // Indonesia
    }
    return map;
  }

  // The form's pin: a click (or "use my location") fills the lat/lon fields, and
  // typing in them moves the pin. The server checks the point against the city.
  function pinMap(el) {
    var lat = document.getElementById("lat");
    var lon = document.getElementById("lon");
    el.hidden = false;
    var map = baseMap(el);
    var marker = null;
    function place(la, lo, pan) {
      if (!isFinite(la) || !isFinite(lo)) { return; }
      if (marker) { marker.setLatLng([la, lo]); } else { marker = L.marker([la, lo]).addTo(map); }
      if (pan) { map.setView([la, lo], Math.max(map.getZoom(), 16)); }
    }
    function fill(la, lo) {
      lat.value = la.toFixed(6);
      lon.value = lo.toFixed(6);
      place(la, lo, false);
    }
    map.on("click", function (e) { fill(e.latlng.lat, e.latlng.lng); });
    function typed() {
      place(parseFloat(lat.value.replace(",", ".")), parseFloat(lon.value.replace(",", ".")), true);
    }
    lat.addEventListener("change", typed);
    lon.addEventListener("change", typed);
    if (lat.value && lon.value) { typed(); }
    var button = document.getElementById("use-location");
    if (button && navigator.geolocation) {
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.geolocation.getCurrentPosition(function (pos) {
          fill(pos.coords.latitude, pos.coords.longitude);
          map.setView([pos.coords.latitude, pos.coords.longitude], 16);
        }, function () { button.disabled = true; }, { timeout: 10000 });
      });
    }
  }

  // The reports page: the public reports of the current filters as markers,
  // clustered at low zoom, each linking to its page.
  function reportsMap(el) {
    el.hidden = false;
    var map = baseMap(el);
    var layer = typeof L.markerClusterGroup === "function" ? L.markerClusterGroup() : L.layerGroup();
    layer.addTo(map);
    fetch(el.dataset.source, { headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        var bounds = [];
        data.points.forEach(function (p) {
          var a = document.createElement("a");
          a.href = "/reports/" + encodeURIComponent(p.tracking_code);
          a.textContent = p.title;
          var m = L.marker([p.lat, p.lon], { title: p.title });
          m.bindPopup(a);
          layer.addLayer(m);
          bounds.push([p.lat, p.lon]);
        });
        el.dataset.markers = String(data.points.length);
        if (bounds.length && !el.dataset.bbox) { map.fitBounds(bounds, { maxZoom: 15 }); }
      })
      .catch(function () { el.hidden = true; });  // the list below is the page
  }

  function start() {
    var pin = document.getElementById("pin-map");
    if (pin) { pinMap(pin); }
    var reports = document.getElementById("reports-map");
    if (reports) { reportsMap(reports); }
  }
  // After the page has loaded: a slow or unreachable tile server never delays the
  // form or the list.
  if (document.readyState === "complete") { start(); } else { window.addEventListener("load", start); }
})();
