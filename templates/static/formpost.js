// Sends the authorization response of form_post.html to the application
// (OAuth 2.0 Form Post Response Mode). Without JavaScript the page's
// button does the same.
"use strict";
document.getElementById("form-post").submit();
