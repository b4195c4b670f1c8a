-- Singular test: returns offending rows; none expected.
select customer_id, revenue
from {{ ref('customer_revenue') }}
where revenue < 0
