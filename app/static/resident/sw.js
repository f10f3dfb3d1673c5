// Service worker of the phone page: shows a notice (ticket number, what to do) and opens the page.
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { title: "", body: event.data.text() }; }
  event.waitUntil(self.registration.showNotification(data.title || "", { body: data.body || "", data: { url: data.url } }));
});
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  if (event.notification.data && event.notification.data.url) {
    event.waitUntil(self.clients.openWindow(event.notification.data.url));
  }
});
