// The queue page's live notice. It long-polls the queue through the JSON API (the
// session cookie authenticates the GET) with the ETag of the list the page shows,
// and when the list changes it shows a link to reload. It does not reload by
// itself: the officer may be reading or choosing filters.
(function () {
  "use strict";
  var notice = document.getElementById("queue-live");
  if (!notice || !window.fetch) return;
  var url = "/api/v1/tickets?" + notice.dataset.query + "&wait=25";
  var tag = notice.dataset.etag;

  function later(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  async function watch() {
    for (;;) {
      try {
        var r = await fetch(url, {headers: {"If-None-Match": tag}, cache: "no-store",
                                  credentials: "same-origin"});
        if (r.status === 200) { notice.hidden = false; return; }
        if (r.status === 401 || r.status === 403) return;  // logged out elsewhere
        if (r.status !== 304) await later(10000);  // server trouble: ease off
      } catch (e) {
        await later(5000);  // offline for a moment
      }
    }
  }
  watch();
})();
