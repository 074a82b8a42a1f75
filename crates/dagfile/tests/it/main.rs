//! Integration tests of updraft-dagfile.
