/* A live changelist (realtime.admin) and the stock admin's actions.js.
 *
 * actions.js keeps the row checkboxes it found when the page loaded, and the total the page was
 * rendered with, and listens on the table of rows it found. On a live changelist rows arrive,
 * move and leave, and the table itself goes when the last row leaves and comes back with the
 * next: its counter ("2 of 4 selected"), its "select all" box and its shift-click ranges would
 * count rows that are gone, miss rows that came, or stop answering. So this hands it a list of
 * checkboxes read afresh on every use; starts it again on a new table (or first, when the page
 * loaded without rows); and recounts after every render of the rows, with the total that render
 * carries (data-result-count on #realtime-admin-results).
 *
 * The search bar's count ("2 results (5 total)") comes with every render too, hidden
 * (#realtime-admin-search-count); it replaces the bar's, and nothing else of the bar (what the user
 * is typing stays).
 *
 * Loaded after actions.js and before the page has loaded (a plain script in the head), so the
 * stock start-up calls the wrapped Actions. The actions part runs only with actions.js.
 */
"use strict";
{
    let recount = null; // set below when the page has the stock actions.js

    const searchCount = function () {
        const fresh = document.getElementById("realtime-admin-search-count");
        const submit = document.querySelector("#changelist-search input[type=submit]");
        if (!fresh || !submit) {
            return;
        }
        const shown = submit.parentElement.querySelector(":scope > span.small.quiet");
        const now = fresh.querySelector("span.small.quiet");
        if (shown && now && shown.outerHTML === now.outerHTML) {
            return;
        }
        if (shown) {
            shown.remove();
        }
        if (now) {
            submit.after(now.cloneNode(true));
        }
    };

    const stock = window.Actions;
    if (typeof stock === "function") {
        const checkboxes = () =>
            Array.from(document.querySelectorAll("tr input.action-select"));
        // Array-like and iterable, as actions.js uses it; every read is of the rows now.
        const rows = new Proxy([], {
            get(_, key) {
                const now = checkboxes();
                const value = Reflect.get(now, key);
                return typeof value === "function" ? value.bind(now) : value;
            },
        });
        let table = null; // the #result_list actions.js listens on
        window.Actions = function (_checkboxes, options) {
            table = document.getElementById("result_list");
            return stock(rows, options);
        };

        recount = function () {
            const results = document.getElementById("realtime-admin-results");
            const counter = document.querySelector("span.action-counter");
            if (!results || !counter) {
                return; // no action bar: nothing counts
            }
            if (results.dataset.resultCount !== undefined) {
                counter.dataset.actionsIcnt = results.dataset.resultCount;
            }
            const now = document.getElementById("result_list");
            if (now !== table) {
                // A table actions.js has not seen (a page loaded empty, or emptied and filled
                // again). Starting it again also adds its document-wide listeners again; they
                // repeat what the first ones do.
                if (
                    now &&
                    checkboxes().length &&
                    document.getElementById("action-toggle") &&
                    document.querySelector("#changelist-form button[name=index]")
                ) {
                    window.Actions(rows);
                }
                return;
            }
            const across = document.querySelector("div.actions input.select-across");
            if (across && across.value === "1") {
                return; // "all N selected": the query's rows, not the ones on the page
            }
            // actions.js recounts on pageshow (a page restored from the back/forward cache).
            window.dispatchEvent(new PageTransitionEvent("pageshow"));
        };
    }

    const rendered = function () {
        searchCount();
        if (recount) {
            recount();
        }
    };
    const watch = function () {
        const results = document.getElementById("realtime-admin-results");
        if (results) {
            new MutationObserver(rendered).observe(results, {
                childList: true,
                subtree: true,
                attributes: true,
                attributeFilter: ["data-result-count"],
            });
        }
    };
    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", watch);
    } else {
        watch();
    }
}
