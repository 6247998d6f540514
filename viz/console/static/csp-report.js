/* Loaded first: a resource or script blocked by the content security policy is a bug of the
 * page, so report it on the console (browser tests fail on console errors) and keep a list. */
(function () {
  'use strict';
  window.cspViolations = [];
  document.addEventListener('securitypolicyviolation', function (e) {
    var text = 'content security policy blocked ' + (e.blockedURI || 'inline code') + ' (' + e.violatedDirective + ')';
    window.cspViolations.push(text);
    console.error(text);
  });
})();
