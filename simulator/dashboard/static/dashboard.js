// Charts and the link indicator. The fragments themselves are swapped by htmx's SSE extension;
// the chart series arrive as JSON in the hidden #chart-data element and are drawn here.
(function () {
  "use strict";
  const charts = {};

  function draw(id, labels, values, label) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    if (charts[id]) {
      charts[id].data.labels = labels;
      charts[id].data.datasets[0].data = values;
      charts[id].update("none");
      return;
    }
    charts[id] = new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: label, data: values, backgroundColor: "#2f6f9f" }] },
      options: {
        animation: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }

  function redraw() {
    const holder = document.getElementById("chart-data");
    if (!holder || !holder.textContent.trim()) return;
    const data = JSON.parse(holder.textContent);
    draw("by-hour", data.hours.labels, data.hours.items, "items");
    draw("by-product", data.products.labels, data.products.items, "items");
    document.body.dataset.chartDay = data.day || "";
    document.body.dataset.chartItems = String(data.hours.items.reduce((a, b) => a + b, 0));
  }

  document.addEventListener("DOMContentLoaded", redraw);
  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "chart-data") redraw();
  });
  document.body.addEventListener("htmx:sseOpen", function () {
    document.getElementById("link").textContent = "live";
    document.getElementById("link").className = "link";
  });
  document.body.addEventListener("htmx:sseError", function () {
    document.getElementById("link").textContent = "reconnecting";
    document.getElementById("link").className = "link down";
  });
})();
