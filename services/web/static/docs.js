// Swagger UI for the OpenAPI document, from the package's own copy (static/vendor): no
// CDN, and no inline script (the CSP allows only the package's files).
(function () {
  const node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.dataset.openapi,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,  // no call to an online validator
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
