// Reception: optional camera scanning of the QR ticket, and live arrival counts.
// The page works without this file: staff type the number and press Search.
(function () {
  "use strict";
  var counts = document.getElementById("counts");
  if (counts && window.fetch) {
    setInterval(function () {
      fetch(counts.dataset.url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          counts.querySelectorAll("[data-count]").forEach(function (cell) {
            cell.textContent = data[cell.dataset.count];
          });
        })
        .catch(function () {});
    }, 15000);
  }
  var button = document.getElementById("scan");
  var video = document.getElementById("camera");
  if (!button || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream;
      video.hidden = false;
      video.play();
      var look = function () {
        detector.detect(video).then(function (codes) {
          if (codes.length) {
            stream.getTracks().forEach(function (t) { t.stop(); });
            document.getElementById("q").value = codes[0].rawValue;
            document.getElementById("search").submit();
          } else {
            requestAnimationFrame(look);
          }
        }).catch(function () { requestAnimationFrame(look); });
      };
      look();
    });
  });
})();
