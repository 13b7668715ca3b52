// A carrier's bookings, newest first, from GET /v1/bookings (the key decides whose).
(function () {
  const boot = JSON.parse(document.body.dataset.boot);
  fetch(`/v1/bookings?limit=1000&api_key=${encodeURIComponent(boot.key)}`).then(async (res) => {
    const count = document.getElementById("count");
    if (!res.ok) { count.textContent = `error ${res.status}: ${await res.text()}`; return; }
    const bookings = await res.json();
    count.textContent = `${bookings.length} booking(s)`;
    const body = document.querySelector("#bookings tbody");
    for (const b of bookings) {
      const tr = document.createElement("tr");
      for (const v of [b.carrier_reference, b.hub_id, b.slot_start, b.status, b.updated_at]) {
        const td = document.createElement("td");
        td.textContent = v === undefined || v === null ? "–" : String(v);
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  });
})();
