// The start page of a signed-in admin: every hub's dashboard and every city's report.
(function () {
  const boot = JSON.parse(document.body.dataset.boot);
  if (!boot.who || boot.who.role !== "admin") return;
  fetch("/v1/hubs").then((r) => (r.ok ? r.json() : [])).then((hubs) => {
    const box = document.getElementById("everything");
    const cities = {};
    const list = document.createElement("ul");
    for (const h of hubs) {
      cities[h.city.id] = h.city.name;
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `/ui/hubs/${encodeURIComponent(h.id)}`;
      a.textContent = `${h.name} (${h.id})`;
      li.appendChild(a);
      list.appendChild(li);
    }
    const h2 = document.createElement("h2");
    h2.textContent = "Hubs";
    const h2c = document.createElement("h2");
    h2c.textContent = "Cities";
    const clist = document.createElement("ul");
    for (const [id, name] of Object.entries(cities)) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `/ui/cities/${encodeURIComponent(id)}`;
      a.textContent = name;
      li.appendChild(a);
      clist.appendChild(li);
    }
    box.append(h2, list, h2c, clist);
  });
})();
