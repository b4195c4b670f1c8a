select
    customer_id,
    customer_name,
    count(*) as order_count,
    sum(amount) as revenue
from {{ ref('int_customer_orders') }}
where status = 'completed'
group by customer_id, customer_name
