// Starts Swagger UI on /docs. A served file, not an inline script, so the page's policy can
// allow scripts from the service itself only. The page says where the OpenAPI document is.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    // Never ask validator.swagger.io to check the document: no third-party request.
    validatorUrl: null,
  });
});
