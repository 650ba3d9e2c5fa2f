// The console's one script: keeps a lot's occupancy live by asking our own server every
// 10 seconds. Everything else works without it.
(function () {
  'use strict';
  var box = document.querySelector('[data-poll]');
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute('data-poll');
  var keys = ['spaces', 'in_service', 'occupied', 'free'];
  function update() {
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' })
      .then(function (r) {
        if (!r.ok || (r.headers.get('content-type') || '').indexOf('json') < 0) { throw new Error('no'); }
        return r.json();
      })
      .then(function (o) {
        keys.forEach(function (k) {
          var el = document.getElementById('occ-' + k);
          if (el && String(o[k]) !== el.textContent) { el.textContent = o[k]; }
        });
        var at = document.getElementById('occ-updated');
        if (at) { at.textContent = new Date().toLocaleTimeString(); }
      })
      .catch(function () {});
  }
  setInterval(update, 10000);
}());
