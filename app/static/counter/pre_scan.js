// 事前入力コード: a USB scanner types the QR's text + Enter into the field (the form submits); the
// camera button decodes the QR in the browser with the vendored @zxing/library and submits the same form.
(function () {
  "use strict";
  const form = document.getElementById("pre-form");
  const input = document.getElementById("pre-code");
  const button = document.getElementById("pre-camera");
  const box = document.getElementById("pre-scanner");
  const video = document.getElementById("pre-video");
  const status = document.getElementById("pre-scan-status");
  const stop = document.getElementById("pre-camera-stop");
  if (!form || !input || !button || !window.ZXing || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  const CODE = /([0-9A-Z]{4})-?([0-9A-Z]{4})\s*$/;
  let stream = null;
  let timer = null;
  const canvas = document.createElement("canvas");
  const hints = new Map([[ZXing.DecodeHintType.POSSIBLE_FORMATS, [ZXing.BarcodeFormat.QR_CODE]]]);
  const reader = new ZXing.QRCodeReader();

  function halt() {
    if (timer) window.clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    box.hidden = true;
  }
  function scan() {
    if (!stream) return;
    if (video.readyState >= 2 && video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(video, 0, 0);
      try {
        const source = new ZXing.HTMLCanvasElementLuminanceSource(canvas);
        const result = reader.decode(new ZXing.BinaryBitmap(new ZXing.HybridBinarizer(source)), hints);
        const text = String(result.getText() || "").toUpperCase();
        if (CODE.test(text)) {
          input.value = text;
          status.textContent = "読み取りました。事前入力を開きます";
          halt();
          form.requestSubmit();
          return;
        }
        status.textContent = "事前入力の QR コードではありません";
      } catch (e) {
        reader.reset();  // no code in this frame yet
      }
    }
    timer = window.setTimeout(scan, 200);
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (e) {
      status.textContent = "カメラを使えません。コードを入力してください";
      box.hidden = false;
      return;
    }
    box.hidden = false;
    status.textContent = "QR コードをカメラに向けてください";
    video.srcObject = stream;
    await video.play().catch(() => {});
    scan();
  });
  stop.addEventListener("click", halt);
})();
