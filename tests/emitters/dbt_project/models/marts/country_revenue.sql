select
    c.country,
    sum(r.revenue) as revenue
from {{ ref('customer_revenue') }} as r
join {{ ref('stg_customers') }} as c
    on r.customer_id = c.customer_id
group by c.country
