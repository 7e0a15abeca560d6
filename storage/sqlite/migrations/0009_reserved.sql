-- A placeholder for the custody migration (disclosures, re-seal tasks) another branch
-- adds as 0009: migrations must run 1, 2, 3… without gaps. Delete this file when that
-- branch's 0009 is merged.
SELECT 1;
